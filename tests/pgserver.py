"""A throwaway PostgreSQL server for the tests and benchmarks.

`initdb` in a temporary folder, `pg_ctl start` on a free port of 127.0.0.1 with
its socket in that folder, and `stop` (folder removed) afterwards. The server
refuses to run as root, so as root everything runs as the `postgres` user.

On a developer's machine, the same server by hand (prints the URL, stops on Ctrl-C):

    python -m tests.pgserver
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def find_bin() -> Path | None:
    """The folder holding initdb and pg_ctl: $SPEEDRUN_PG_BIN when set (only there), else Debian's
    PostgreSQL 15 (or any version), else the PATH."""
    if os.environ.get("SPEEDRUN_PG_BIN"):
        folder = Path(os.environ["SPEEDRUN_PG_BIN"])
        return folder if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file() else None
    candidates = ["/usr/lib/postgresql/15/bin", *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(str(Path(found).parent))
    for folder in filter(None, candidates):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One cluster in a temporary folder. `url(name)` names a database on it."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="speedrun-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self._names = itertools.count(1)
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> PostgresServer:
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--locale=C", "--no-sync")
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c synchronous_commit=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"), "-w",
                  "start")
        return self

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        secret = f":{password}" if password else ""
        return f"postgresql+psycopg://postgres{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database on this server; returns its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')  # fast with fsync off
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> None:
    bindir = find_bin()
    if bindir is None:
        raise SystemExit("PostgreSQL's initdb and pg_ctl were not found (apt install postgresql, or set SPEEDRUN_PG_BIN)")
    # SIGTERM (kill, a service manager) and SIGHUP (a closed terminal) stop it as Ctrl-C does: the
    # server stopped and its folder removed, however it was asked to end.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    server = PostgresServer(bindir)
    try:
        server.start()
        print(f"PostgreSQL is running: export SPEEDRUN_DB='{server.url()}'   "
              f"(Ctrl-C stops it and removes its data in {server.folder})", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):  # the clean-up itself is not cut short
            signal.signal(signum, signal.SIG_IGN)
        server.remove()


if __name__ == "__main__":
    main()
