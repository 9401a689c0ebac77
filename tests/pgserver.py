"""A throwaway PostgreSQL cluster for the test session, started from the server binaries on the machine."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def find_bindir() -> Path | None:
    """Return the newest /usr/lib/postgresql/<version>/bin that has initdb and pg_ctl."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True
    )
    for folder in candidates:
        if os.path.exists(os.path.join(folder, "initdb")) and os.path.exists(os.path.join(folder, "pg_ctl")):
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """A running throwaway cluster: its data folder, port and how to stop it."""

    bindir: Path
    datadir: Path
    port: int
    as_postgres: bool

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        # initdb and postgres refuse to run as root: drop to the postgres user there
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        return subprocess.run([*prefix, *args], capture_output=True, text=True, check=False)

    def start(self) -> None:
        init = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.strip()}")
        self.start_server()

    def start_server(self) -> None:
        """Start (or restart) the server on the cluster's data folder."""
        options = (
            f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100 -c max_wal_size=512MB"
        )
        log = str(self.datadir / "server.log")
        started = self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-o",
            options,
            "-l",
            log,
            "-w",
            "-t",
            "60",
            "start",
        )
        if started.returncode != 0:
            raise RuntimeError(
                f"pg_ctl start failed: {started.stderr.strip()} {Path(log).read_text()[-2000:]}"
            )

    def stop_server(self) -> None:
        """Stop the server at once, keeping its data (a crash, as far as clients can tell)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


# A cluster in memory creates, writes and deletes its databases several times quicker than
# one on disk (a database is 8 MB of files: every test copies one); only where the memory
# file system has ample room (a container's /dev/shm may have 64 MB).
MEMORY_FOLDER = "/dev/shm"
MEMORY_ROOM = 2 << 30


def _scratch_folder() -> str | None:
    """The folder to hold the cluster: MEMORY_FOLDER if it has room, else the usual temporary folder."""
    try:
        room = os.statvfs(MEMORY_FOLDER)
    except OSError:
        return None
    fits = room.f_bavail * room.f_frsize >= MEMORY_ROOM and os.access(MEMORY_FOLDER, os.W_OK | os.X_OK)
    return MEMORY_FOLDER if fits else None


def start_cluster() -> Cluster:
    """Start a cluster in a new temporary folder; raise RuntimeError if that is impossible here."""
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    as_postgres = os.geteuid() == 0
    if as_postgres and shutil.which("runuser") is None:
        raise RuntimeError("running as root needs runuser to start PostgreSQL as the postgres user")
    top = Path(tempfile.mkdtemp(prefix="riskreg-pg-", dir=_scratch_folder()))
    datadir = top / "data"
    datadir.mkdir()
    if as_postgres:
        shutil.chown(top, "postgres")
        shutil.chown(datadir, "postgres")
        os.chmod(top, 0o755)
    cluster = Cluster(bindir, datadir, _free_port(), as_postgres)
    try:
        cluster.start()
    except Exception:
        shutil.rmtree(top, ignore_errors=True)
        raise
    return cluster
