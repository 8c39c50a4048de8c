"""Print ``name==X`` for each named distribution's lower bound (``>=X``) in pyproject.toml.

CI's oldest-deps job installs these over the lock (the bounds have one place)::

    pip install $(python scripts/lower_bounds.py torch lightning)
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def requirements(pyproject: Path, groups: Iterable[str] | None = None) -> list[Requirement]:
    """The project's dependencies and those of its optional ``groups`` (default: every one)."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    optional = project.get("optional-dependencies", {})
    specs = list(project.get("dependencies", []))
    for group in optional if groups is None else groups:
        specs += optional[group]
    return [Requirement(spec) for spec in specs]


def lower_bounds(pyproject: Path, names: list[str]) -> list[str]:
    """``name==X`` per name, X its requirement's ``>=`` bound; ValueError when one has none."""
    bounds: dict[str, set[str]] = {}
    for req in requirements(pyproject):
        floors = {s.version for s in req.specifier if s.operator == ">="}
        bounds.setdefault(canonicalize_name(req.name), set()).update(floors)
    pins = []
    for name in names:
        floors = bounds.get(canonicalize_name(name))
        if not floors:
            raise ValueError(f"{pyproject}: no `{name}>=X` requirement")
        if len(floors) > 1:
            raise ValueError(f"{pyproject}: {name} has different lower bounds {sorted(floors)}")
        pins.append(f"{name}=={floors.pop()}")
    return pins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", help="distribution names, e.g. torch lightning")
    parser.add_argument("--pyproject", type=Path, default=PYPROJECT, help="default: the repo's")
    args = parser.parse_args(argv)
    try:
        print(" ".join(lower_bounds(args.pyproject, args.names)))
    except ValueError as error:
        print(f"lower_bounds: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
