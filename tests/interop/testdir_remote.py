"""A small external special remote program for the tests: ``git-annex-remote-testdir``.

Stores each key in the directory named by its ``directory`` config, at
``<directory>/<DIRHASH-LOWER><key>/<key>`` (the directory special remote's layout),
written to a temp name and renamed. Standard library only; run as a script. Every line
received is appended to ``<directory>/trace.log`` and what git-annex (or annexproxy) told
it at PREPARE to ``<directory>/prepare.log`` (one JSON object per line), so tests can
compare the two. Faults, switched on by files in the directory:

* ``CRASH-STORE`` / ``CRASH-RETRIEVE``: exit after the first chunk of such a transfer;
* ``CRASHES-RETRIEVE`` holding a number N > 0: as ``CRASH-RETRIEVE``, counting N down;
* ``GATE`` (a FIFO): after the first chunk of a RETRIEVE, read the FIFO to its end
  before writing the rest (so a test can see the download streamed while it grows).

The ``ordered`` config set to ``no`` makes it answer GETORDERED with UNORDERED;
``replace=yes`` makes RETRIEVE write a file of its own and rename it over the one given;
``resume=yes`` makes RETRIEVE continue a file given partly written (the protocol allows
it) and append ``<key> <bytes found>`` to ``<directory>/resume.log``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

CHUNK = 64 * 1024


class Remote:
    def __init__(self) -> None:
        self.directory: Path | None = None
        self.extensions: list[str] = []

    def send(self, line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def receive(self) -> str:
        line = sys.stdin.readline()
        if not line:
            sys.exit(0)
        line = line.rstrip("\n")
        if self.directory is not None and self.directory.is_dir():
            with (self.directory / "trace.log").open("a") as trace:
                trace.write(line + "\n")
        return line

    def ask(self, line: str) -> str:
        self.send(line)
        reply = self.receive()
        word, _, value = reply.partition(" ")
        if word != "VALUE":
            self.send(f"ERROR expected VALUE, got {reply}")
            sys.exit(1)
        return value

    def config(self, name: str) -> str:
        return self.ask(f"GETCONFIG {name}")

    def object_path(self, key: str) -> Path:
        assert self.directory is not None
        hashdir = self.ask(f"DIRHASH-LOWER {key}")
        return self.directory / hashdir / key / key

    def prepare(self) -> None:
        value = self.config("directory")
        if not value:
            self.send("PREPARE-FAILURE no directory configured")
            return
        self.directory = Path(value)
        record = {
            "pid": os.getpid(),
            "cwd": os.getcwd(),
            "GIT_DIR": os.environ.get("GIT_DIR"),
            "GIT_WORK_TREE": os.environ.get("GIT_WORK_TREE"),
            "uuid": self.ask("GETUUID"),
            "gitdir": self.ask("GETGITDIR"),
            "remotename": self.ask("GETGITREMOTENAME")
            if "GETGITREMOTENAME" in self.extensions
            else None,
            "missing": self.config("no-such-setting"),
        }
        with (self.directory / "prepare.log").open("a") as log:
            log.write(json.dumps(record) + "\n")
        self.send("PREPARE-SUCCESS")

    def copy(self, src: Path, dest: Path, crash: str, gate: Path | None, start: int = 0) -> None:
        done = start
        with src.open("rb") as inp, dest.open("ab" if start else "wb") as out:
            inp.seek(start)
            while chunk := inp.read(CHUNK):
                out.write(chunk)
                out.flush()
                done += len(chunk)
                self.send(f"PROGRESS {done}")
                assert self.directory is not None
                if (self.directory / crash).exists():
                    os._exit(3)
                if crash == "CRASH-RETRIEVE" and self.countdown("CRASHES-RETRIEVE"):
                    os._exit(3)
                if gate is not None:
                    with gate.open("rb") as fifo:
                        fifo.read()
                    gate = None

    def countdown(self, name: str) -> bool:
        """Whether the count in file ``name`` was above 0 (it is then one less)."""
        assert self.directory is not None
        path = self.directory / name
        left = int(path.read_text()) if path.exists() else 0
        if left > 0:
            path.write_text(str(left - 1))
        return left > 0

    def transfer(self, direction: str, key: str, file: str) -> None:
        path = self.object_path(key)
        if direction == "STORE":
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            self.copy(Path(file), tmp, "CRASH-STORE", None)
            tmp.rename(path)
        elif not path.exists():
            self.send(f"TRANSFER-FAILURE RETRIEVE {key} {key} is not stored here")
            return
        else:
            assert self.directory is not None
            gate = self.directory / "GATE"
            if self.config("resume") == "yes":
                have = Path(file).stat().st_size if Path(file).exists() else 0
                with (self.directory / "resume.log").open("a") as log:
                    log.write(f"{key} {have}\n")
                self.copy(path, Path(file), "CRASH-RETRIEVE", None, have)
            elif self.config("replace") == "yes":
                # Download to a file of its own, then rename it over the one given.
                part = Path(file + ".part")
                self.copy(path, part, "CRASH-RETRIEVE", None)
                part.replace(file)
            else:
                self.copy(path, Path(file), "CRASH-RETRIEVE", gate if gate.exists() else None)
        self.send(f"TRANSFER-SUCCESS {direction} {key}")

    def handle(self, line: str) -> None:
        word, _, rest = line.partition(" ")
        if word == "EXTENSIONS":
            self.extensions = [e for e in rest.split() if e in ("INFO", "GETGITREMOTENAME")]
            self.send(" ".join(["EXTENSIONS", *self.extensions]))
        elif word == "INITREMOTE":
            ok = bool(self.config("directory"))
            self.send("INITREMOTE-SUCCESS" if ok else "INITREMOTE-FAILURE need directory=")
        elif word == "PREPARE":
            self.prepare()
        elif word == "GETORDERED":
            self.send("UNORDERED" if self.config("ordered") == "no" else "ORDERED")
        elif word == "TRANSFER":
            direction, key, file = rest.split(" ", 2)
            self.transfer(direction, key, file)
        elif word == "CHECKPRESENT":
            if self.directory is None or not self.directory.is_dir():
                self.send(f"CHECKPRESENT-UNKNOWN {rest} directory is missing")
            else:
                present = self.object_path(rest).exists()
                self.send(f"CHECKPRESENT-{'SUCCESS' if present else 'FAILURE'} {rest}")
        elif word == "REMOVE":
            path = self.object_path(rest)
            path.unlink(missing_ok=True)
            self.send(f"REMOVE-SUCCESS {rest}")
        else:
            self.send("UNSUPPORTED-REQUEST")


def main() -> None:
    remote = Remote()
    remote.send("VERSION 2")
    while True:
        remote.handle(remote.receive())


if __name__ == "__main__":
    main()
