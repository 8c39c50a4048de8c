"""The serving bundle: an exported model directory plus its ONNX files and provenance.

``python -m tweetcls export`` (:mod:`tweetcls.export.writer`) writes it::

    <bundle>/
      config.json, model.safetensors, tokenizer files   # the Hugging Face model (PyTorch)
      tweetcls.json          # threshold and input settings, written by fit
      onnx/model.onnx        # fp32, dynamic batch and sequence axes
      onnx/model.int8.onnx   # dynamically quantized (int8 weights)
      serving.json           # version, file hashes, provenance, validation metrics
      drift_reference.json   # training-data profile for `tweetcls drift`

:func:`load_bundle` also accepts a plain model directory from ``fit`` (no ``serving.json``):
only the ``pytorch`` backend is available then.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tweetcls.core.calibration import Calibration
from tweetcls.core.errors import ConfigError
from tweetcls.core.hashing import file_sha256
from tweetcls.core.inputs import LEGACY_NORMALISER, check_normaliser

#: Written by fit's ExportBestModel: threshold and input settings.
META_FILE = "tweetcls.json"
#: The fast tokenizer the backends run (``tokenizers``); without it transformers would build an
#: empty tokenizer from ``config.json`` and the service would answer nonsense.
TOKENIZER_FILE = "tokenizer.json"
#: Written by export: version, hashes, provenance.
INFO_FILE = "serving.json"
#: Written by export: the training-data profile for drift detection.
DRIFT_REFERENCE_FILE = "drift_reference.json"
#: Model file of each backend, relative to the bundle.
BACKEND_FILES = {
    "onnx-int8": "onnx/model.int8.onnx",
    "onnx": "onnx/model.onnx",
    "pytorch": "model.safetensors",
}
#: Backend names, default (fastest) first: the one list of them (``serve --backend`` choices).
BACKENDS: tuple[str, ...] = tuple(BACKEND_FILES)
#: Keys of ``tweetcls.json`` that inference needs, with their types.
REQUIRED_META = {
    "threshold": (int, float),
    "max_length": int,
    "use_keyword": bool,
    "use_location": bool,
}
#: Keys of ``serving.json`` that loading relies on.
REQUIRED_INFO = ("version", "model_sha256", "onnx_inputs")
VERSION_LENGTH = 12


def weights_version(model_dir: str | Path) -> str:
    """The model version: the first 12 hex digits of the SHA-256 of the weights file."""
    weights = Path(model_dir) / BACKEND_FILES["pytorch"]
    if not weights.is_file():
        raise ConfigError(f"{weights}: weights file not found (is this a model directory?)")
    return file_sha256(weights)[:VERSION_LENGTH]


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; :class:`ConfigError` naming the file if it is not one."""
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def _check_meta(path: Path, meta: dict[str, Any]) -> None:
    for key, kind in REQUIRED_META.items():
        if key not in meta:
            raise ConfigError(f"{path}: missing key '{key}'")
        value = meta[key]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise ConfigError(f"{path}: '{key}' has the wrong type ({value!r})")
    if not 0.0 <= meta["threshold"] <= 1.0:
        raise ConfigError(f"{path}: 'threshold' must lie in [0, 1], got {meta['threshold']}")
    if meta["max_length"] < 1:
        raise ConfigError(f"{path}: 'max_length' must be >= 1, got {meta['max_length']}")
    check_normaliser(meta.get("normaliser", LEGACY_NORMALISER), f"{path}: 'normaliser'")


def _check_info(path: Path, info: dict[str, Any]) -> None:
    for key in REQUIRED_INFO:
        if key not in info:
            raise ConfigError(f"{path}: missing key '{key}'")
    version = info["version"]
    if not (
        isinstance(version, str)
        and len(version) == VERSION_LENGTH
        and all(c in "0123456789abcdef" for c in version)
    ):
        raise ConfigError(f"{path}: 'version' must be {VERSION_LENGTH} hex digits, got {version!r}")
    if not isinstance(info["model_sha256"], dict):
        raise ConfigError(f"{path}: 'model_sha256' must map backends to hashes")
    Calibration.of(info, str(path))


@dataclass(frozen=True)
class Bundle:
    """A loaded serving bundle (or plain model directory).

    Args:
        path: The bundle directory.
        meta: ``tweetcls.json`` (threshold, ``max_length``, ``use_keyword``, ...).
        info: ``serving.json``; empty for a plain model directory.
        threshold: Probability at or above which a tweet is labelled a disaster, on the scale
            of the bundle's (calibrated) probabilities.
        version: 12 hex digits identifying the weights.
    """

    path: Path
    meta: dict[str, Any] = field(repr=False)
    info: dict[str, Any] = field(repr=False)
    threshold: float
    version: str

    @classmethod
    def of(cls, path: Path, meta: dict[str, Any], info: dict[str, Any], version: str) -> Bundle:
        """The bundle of these files' contents; its threshold is fit's (``tweetcls.json``),
        moved with the calibrated probabilities so that decisions stay the same."""
        threshold = Calibration.of(info, str(path)).threshold(float(meta["threshold"]))
        return cls(path=path, meta=meta, info=info, threshold=threshold, version=version)

    @property
    def calibration(self) -> Calibration:
        """The map export fitted (``serving.json``'s ``calibration``; none: the identity),
        which every backend applies to the model's logit margin
        (:mod:`tweetcls.core.calibration`)."""
        return Calibration.of(self.info, str(self.path))

    @property
    def normaliser(self) -> int:
        """The text normaliser version the model was trained with (``tweetcls.json``)."""
        return int(self.meta.get("normaliser", LEGACY_NORMALISER))

    def backend_file(self, kind: str) -> Path:
        """The model file of backend ``kind`` (see ``BACKEND_FILES``)."""
        if kind not in BACKEND_FILES:
            raise ConfigError(f"unknown backend {kind!r}; choose one of {', '.join(BACKEND_FILES)}")
        return self.path / BACKEND_FILES[kind]

    def available_backends(self) -> list[str]:
        """Backends whose model file exists, fastest first."""
        return [kind for kind in BACKEND_FILES if self.backend_file(kind).is_file()]

    def versions(self) -> dict[str, Any]:
        """What ``GET /version`` reports: model version, input settings and provenance."""
        return {
            "version": self.version,
            "threshold": self.threshold,
            "calibration": self.calibration.as_dict(),
            "pretrained_model": self.meta.get("pretrained_model"),
            "max_length": self.meta["max_length"],
            "use_keyword": self.meta["use_keyword"],
            "use_location": self.meta["use_location"],
            "normaliser": self.normaliser,
            "best_val_f1": self.meta.get("best_val_f1"),
            "backends": self.available_backends(),
            "model_sha256": self.info.get("model_sha256", {}),
            "config_sha256": self.info.get("config_sha256"),
            "data_md5": self.info.get("data_md5"),
            "git_commit": self.info.get("git_commit"),
            "source_date": self.info.get("source_date"),
        }


def load_bundle(path: str | Path) -> Bundle:
    """Load a bundle written by ``tweetcls export``, or a plain model directory from ``fit``.

    Raises:
        ConfigError: the directory, ``tweetcls.json`` or ``serving.json`` is missing or
            malformed (the message names the file).
    """
    root = Path(path)
    if not root.is_dir():
        raise ConfigError(f"{root}: model directory not found")
    meta_path = root / META_FILE
    meta = read_json(meta_path)
    _check_meta(meta_path, meta)
    info_path = root / INFO_FILE
    if info_path.exists():
        info = read_json(info_path)
        _check_info(info_path, info)
        version = info["version"]
    else:
        info, version = {}, weights_version(root)
    return Bundle.of(root, meta, info, version)
