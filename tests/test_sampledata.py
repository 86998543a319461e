"""sampledata.py: the UCI downloader extracts the nested archive and writes only a verified file."""

import hashlib
import http.server
import io
import threading
import zipfile

import pytest

from predictionservice import sampledata
from predictionservice.exceptions import InvalidDataset


def _uci_archive(csv_bytes: bytes) -> bytes:
    """bank+marketing.zip as UCI ships it: a zip holding bank.zip holding bank-full.csv."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("bank-full.csv", csv_bytes)
        z.writestr("bank.csv", b"a;b\n")
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as z:
        z.writestr("bank.zip", inner.getvalue())
        z.writestr("bank-additional.zip", b"not used")
    return outer.getvalue()


@pytest.fixture()
def archive_server():
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            if body is not None:
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield files, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_extracts_and_verifies_the_nested_archive(archive_server, bank_csv, tmp_path):
    files, base = archive_server
    data = bank_csv.read_bytes()
    files["/222/bank+marketing.zip"] = _uci_archive(data)
    path = sampledata.download_bank(tmp_path / "data", url=base + "/222/bank+marketing.zip")
    assert path.read_bytes() == data
    assert hashlib.sha256(data).hexdigest() == sampledata.UCI_BANK_SHA256


def test_download_refuses_a_wrong_checksum_and_writes_nothing(archive_server, tmp_path):
    files, base = archive_server
    files["/a.zip"] = _uci_archive(b"tampered;data\n")
    with pytest.raises(InvalidDataset, match="sha256"):
        sampledata.download_bank(tmp_path, url=base + "/a.zip")
    files["/b.zip"] = b"not a zip at all"
    with pytest.raises(InvalidDataset, match="not a zip"):
        sampledata.download_bank(tmp_path, url=base + "/b.zip")
    assert list(tmp_path.iterdir()) == []
