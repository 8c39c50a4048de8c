"""Throwaway Redis servers for tests: ``redis-server`` on a free port of 127.0.0.1, nothing
saved to disk, stopped at the end.

Without the binary the fixture skips with the reason (``apt-get install redis-server``;
``install.sh`` installs it as root on Debian), unless ``TWEETCLS_REQUIRE_REDIS=1``, where it
fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.servers import free_port

#: Longest a test waits for the server to answer PING.
START_TIMEOUT_S = 20.0


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """``redis://127.0.0.1:PORT/0`` of a fresh server of this test's own."""
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server not found (apt-get install redis-server)"
        if os.environ.get("TWEETCLS_REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis required (TWEETCLS_REQUIRE_REDIS=1): {reason}")
        pytest.skip(f"no Redis server: {reason}")
    port = free_port()
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly"]
    argv += ["no", "--dir", str(tmp_path)]
    with (tmp_path / "redis.log").open("wb") as log:
        server = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ping(port):
            assert server.poll() is None, (tmp_path / "redis.log").read_text(errors="replace")
            assert time.monotonic() < deadline, f"redis-server not answering on port {port}"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=20)
