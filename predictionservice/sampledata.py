"""The sample dataset, bank-full.csv of the UCI Bank Marketing archive: where a checkout finds
it (BANK_CSV, ./data/, ../shared/data/, or beside the repository a CI clone came from) and a
downloader that writes it only once its checksum is right.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from predictionservice.exceptions import InvalidDataset

UCI_BANK_URL = "https://archive.ics.uci.edu/static/public/222/bank+marketing.zip"
UCI_BANK_SHA256 = "67d672041a4b032e2973b06c18ec60c154886dd27b10dc199d8aa7b7a3d12052"
UCI_BANK_MEMBER = "bank-full.csv"


def bank_csv_candidates(explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where bank-full.csv may be, in order: the given path (BANK_CSV), ./data/, ../shared/data/
    beside this project and, in a git clone of a local repository (CI clones into a temporary
    folder), ../shared/data/ beside the repository it was cloned from."""
    project = Path(__file__).resolve().parent.parent
    places = [Path(explicit)] if explicit else []
    places += [project / "data" / UCI_BANK_MEMBER, project.parent / "shared" / "data" / UCI_BANK_MEMBER]
    origin = _origin_checkout(project)
    if origin is not None:
        places.append(origin.parent / "shared" / "data" / UCI_BANK_MEMBER)
    return places


def find_bank_csv(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    return next((p for p in bank_csv_candidates(explicit) if p.is_file()), None)


def _origin_checkout(project: Path) -> Path | None:
    config = project / ".git" / "config"
    try:
        text = config.read_text()
    except OSError:
        return None
    match = re.search(r'\[remote "origin"\][^\[]*?url\s*=\s*(\S+)', text)
    if not match or "://" in match.group(1) or ":" in match.group(1).split("/")[0]:
        return None  # not a local path (https://, git@host:...)
    origin = Path(match.group(1))
    origin = origin if origin.is_absolute() else (project / origin).resolve()
    return origin if origin != project and origin.is_dir() else None


def _find_member(archive: zipfile.ZipFile, member: str, depth: int = 0) -> bytes | None:
    """A file by base name inside a zip, looking into zips nested in it (UCI ships zip-in-zip)."""
    for info in archive.infolist():
        base = info.filename.rsplit("/", 1)[-1]
        if base == member:
            return archive.read(info)
    if depth < 2:
        for info in archive.infolist():
            if info.filename.lower().endswith(".zip"):
                with zipfile.ZipFile(io.BytesIO(archive.read(info))) as inner:
                    found = _find_member(inner, member, depth + 1)
                    if found is not None:
                        return found
    return None


def download_bank(
    dest: str | os.PathLike[str],
    *,
    url: str = UCI_BANK_URL,
    sha256: str | None = UCI_BANK_SHA256,
    member: str = UCI_BANK_MEMBER,
    timeout: float = 60.0,
) -> Path:
    """Fetch the UCI archive, extract bank-full.csv, check its sha256, write it into dest.

    The file appears only when complete and verified; a bad archive or checksum raises
    InvalidDataset and writes nothing.
    """
    if not url.startswith(("http://", "https://")):
        raise InvalidDataset(f"{url}: only http(s) URLs are downloaded")
    dest_dir = Path(dest)
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as spool:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            shutil.copyfileobj(response, spool, 1 << 20)
        spool.seek(0)
        try:
            with zipfile.ZipFile(spool) as archive:
                data = _find_member(archive, member)
        except zipfile.BadZipFile:
            raise InvalidDataset(f"{url}: not a zip archive") from None
    if data is None:
        raise InvalidDataset(f"{url}: the archive holds no {member}")
    actual = hashlib.sha256(data).hexdigest()
    if sha256 and actual != sha256:
        raise InvalidDataset(f"{member} from {url}: sha256 {actual}, expected {sha256}")
    target = dest_dir / member
    with tempfile.NamedTemporaryFile(dir=dest_dir, delete=False) as out:
        out.write(data)
    os.replace(out.name, target)
    return target
