"""A throwaway PostgreSQL server for tests: ``initdb`` into a temporary directory, ``pg_ctl``
on a free port of 127.0.0.1 (unix socket in the same directory), removed afterwards.

PostgreSQL refuses to run as root: as root the server runs as the ``postgres`` user (Debian's
``postgresql`` package creates it) through ``runuser``. Without binaries or such a user the
fixture skips with the reason, unless ``TWEETCLS_REQUIRE_POSTGRES=1`` (CI), where it fails.
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

from tweetcls.core.ports import free_port

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


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql+psycopg://`` URL of an empty database on a fresh server."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        _unavailable("initdb/pg_ctl not found (apt-get install postgresql)")
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(SERVER_USER)
        except KeyError:
            _unavailable(f"running as root and there is no {SERVER_USER!r} user to run the server")
        prefix = ["runuser", "-u", SERVER_USER, "--"]
    root = Path(tempfile.mkdtemp(prefix="tweetcls-pg-"))
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data, port = root / "data", free_port()
    init = [initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]
    start = [pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "30"]
    start += ["-o", f"-h 127.0.0.1 -p {port} -k {root} -F", "start"]
    try:
        for command in (init, start):
            result = subprocess.run(prefix + command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                log = root / "server.log"
                tail = log.read_text(errors="replace")[-500:] if log.is_file() else ""
                _unavailable(f"{Path(command[0]).name} failed: {result.stderr.strip()} {tail}")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").is_file():
            stop = [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]
            subprocess.run(prefix + stop, capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)
