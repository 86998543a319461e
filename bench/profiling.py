"""py-spy profiles of a server process while a benchmark loads it, summarised as text.

``with Profile(pid, path): ...`` samples the process (all threads, idle ones left out, the
process not paused) for as long as the block runs and writes py-spy's collapsed stacks to path;
``summary()`` then gives the functions where the samples were, inclusive (the share of samples a
function was on the stack for) and by their own time (it was the frame running). A
before/after pair of profiles of one run shows where a change moved the time.
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


class Profile:
    """py-spy record of pid while the block runs, into path (collapsed stacks)."""

    def __init__(self, pid: int, path: Path, rate: int = 250):
        self.pid, self.path, self.rate = pid, Path(path), rate
        self.process: subprocess.Popen | None = None
        self.error: str | None = None

    def __enter__(self) -> Profile:
        program = py_spy()
        if program is None:
            self.error = "py-spy is not installed"
            return self
        argv = [program, "record", "--pid", str(self.pid), "--format", "raw", "--output", str(self.path)]
        argv += ["--rate", str(self.rate), "--nonblocking"]
        self.log = open(self.path.with_suffix(".log"), "wb")
        self.process = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        if not self.path.exists():
            self.error = self.path.with_suffix(".log").read_text(errors="replace")[-300:]

    def summary(self, top: int = 15, within: str | None = None) -> dict[str, Any]:
        """Samples, and the top functions inclusive and by own time, as percentages; with
        within (a 'file.py:function' name), of the samples with that frame on the stack only
        (a request's time, say, not the idle threads'), leaving out the frames above it."""
        if self.error is not None or not self.path.exists():
            return {"error": self.error or "no profile written"}
        inclusive: collections.Counter[str] = collections.Counter()
        own: collections.Counter[str] = collections.Counter()
        total = 0
        for line in self.path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frames = [_name(f) for f in stack.split(";")[1:]]  # the first is the thread
            if within is not None:
                if within not in frames:
                    continue
                frames = frames[frames.index(within) :]
            if not frames:
                continue
            n = int(count)
            total += n
            own[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n

        def share(counter: collections.Counter[str]) -> list[tuple[str, float]]:
            return [(name, round(100.0 * n / total, 1)) for name, n in counter.most_common(top)]

        if total == 0:
            return {"error": f"no samples{' within ' + within if within else ''}"}
        return {"samples": total, "within": within, "inclusive_percent": share(inclusive), "own_percent": share(own)}


def _name(frame: str) -> str:
    """'function (path/to/file.py:12)' as 'file.py:function'."""
    match = FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    return f"{Path(match['file']).name}:{match['function']}"
