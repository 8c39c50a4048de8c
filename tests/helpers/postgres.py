"""Throwaway PostgreSQL servers for tests: ``initdb`` into a temporary directory, ``pg_ctl``
on a free port of 127.0.0.1 (unix socket in the same directory), removed afterwards.

``postgres_url`` is one server for the whole session; ``postgres_server`` is a fresh one per
test that the test may stop and start again (fault tests).

PostgreSQL refuses to run as root: as root the server runs as the ``postgres`` user (Debian's
``postgresql`` package creates it) through ``runuser``. Without binaries or such a user the
fixtures skip with the reason, unless ``TWEETCLS_REQUIRE_POSTGRES=1`` (CI), where they fail.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.servers import free_port

SERVER_USER = "postgres"


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _unavailable(reason: str) -> None:
    if os.environ.get("TWEETCLS_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL required (TWEETCLS_REQUIRE_POSTGRES=1): {reason}")
    pytest.skip(f"no PostgreSQL server: {reason}")


class PostgresServer:
    """One cluster in a temporary directory, on a fixed port across restarts.

    Args:
        root: Empty directory for the cluster, its socket and its log.
    """

    def __init__(self, root: Path) -> None:
        initdb, self.pg_ctl = _binary("initdb"), _binary("pg_ctl")
        if initdb is None or self.pg_ctl is None:
            _unavailable("initdb/pg_ctl not found (apt-get install postgresql)")
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(SERVER_USER)
            except KeyError:
                _unavailable(f"running as root and there is no {SERVER_USER!r} user")
            self.prefix = ["runuser", "-u", SERVER_USER, "--"]
            os.chown(root, owner.pw_uid, owner.pw_gid)
        self.root, self.data, self.port = root, root / "data", free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._run(
            [
                initdb,
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )
        self.start()

    def _run(self, command: list[str]) -> None:
        result = subprocess.run(self.prefix + command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-500:] if log.is_file() else ""
            _unavailable(f"{Path(command[0]).name} failed: {result.stderr.strip()} {tail}")

    def start(self) -> None:
        """Start the server (again) and wait until it accepts connections."""
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -F"
        log = str(self.root / "server.log")
        self._run(
            [self.pg_ctl, "-D", str(self.data), "-l", log, "-w", "-t", "30", "-o", options, "start"]
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnect clients; ``immediate``: like a crash)."""
        if (self.data / "postmaster.pid").is_file():
            command = [self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop"]
            subprocess.run(self.prefix + command, capture_output=True, check=False)


def _server() -> Iterator[PostgresServer]:
    root = Path(tempfile.mkdtemp(prefix="tweetcls-pg-"))
    server = None
    try:
        server = PostgresServer(root)
        yield server
    finally:
        if server is not None:
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql+psycopg://`` URL of an empty database on a server shared by the session."""
    for server in _server():
        yield server.url


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    """A fresh server of this test's own, which it may :meth:`~PostgresServer.stop` and
    :meth:`~PostgresServer.start` again."""
    yield from _server()
