"""The lock, requirements/constraints.txt: the exact versions install.sh, CI and the images use."""

from __future__ import annotations

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from helpers.paths import ROOT

LOCK = ROOT / "requirements" / "constraints.txt"


def lock_entries() -> list[Requirement]:
    """Every ``name==version[ ; marker]`` line of the lock (uv writes one per fork)."""
    lines = LOCK.read_text(encoding="utf-8").splitlines()
    return [Requirement(line) for line in lines if line and not line.startswith((" ", "#"))]


def locked_versions() -> dict[str, str]:
    """``canonical name -> version`` of the entries whose marker holds in this environment."""
    versions = {}
    for entry in lock_entries():
        if entry.marker is None or entry.marker.evaluate():
            (specifier,) = entry.specifier
            versions[canonicalize_name(entry.name)] = specifier.version
    return versions
