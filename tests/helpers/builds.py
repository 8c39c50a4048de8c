"""The shared artifacts of a test session: processed data, the tiny fit and its bundle.

tests/conftest.py builds each once per session; tests/data/regenerate builds them the same way
for the golden files. Every step is the real ``tweetcls`` command.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from helpers.paths import QUIET, SHORT_FIT, tiny_args
from tweetcls.cli import main
from tweetcls.core.bundle import INFO_FILE
from tweetcls.inference.explain import EXPLANATIONS_KEY


def build_processed(out: Path, raw_dir: Path, tiny_model_dir: Path) -> Path:
    """``preprocess`` of ``raw_dir`` into ``out``; its report is ``out.parent / "data.json"``."""
    args = tiny_args(raw_dir, out, tiny_model_dir)
    main(["preprocess", *args, "--report_path", str(out.parent / "data.json")])
    return out


def build_tiny_fit(root: Path, raw_dir: Path, processed_dir: Path, tiny_model_dir: Path) -> Path:
    """A short real ``fit`` (tests/conf/short_fit.yaml); returns its run directory ``root/run``
    with checkpoints/best.ckpt, checkpoints/last.ckpt, model/ and logs/."""
    run = root / "run"
    main(
        [
            "fit",
            *tiny_args(raw_dir, processed_dir, tiny_model_dir, root / "cache"),
            "--config",
            str(QUIET),
            "--config",
            str(SHORT_FIT),
            "--trainer.default_root_dir",
            str(run),
        ]
    )
    return run


def build_bundle(model_dir: Path, out: Path, processed_dir: Path, raw_dir: Path) -> Path:
    """The real ``export`` of ``model_dir`` into ``out``; report ``out.parent / "export.json"``.

    The briefly trained tiny model's probabilities all lie within about 1e-3 of its threshold,
    so int8 rounding flips labels that a real model keeps; the F1 guard is therefore off here
    (``--max_f1_drop 1``) and is tested on its own in tests/export/test_export.py.
    """
    main(
        [
            "export",
            "--model",
            str(model_dir),
            "--out",
            str(out),
            "--data_dir",
            str(processed_dir),
            "--raw_dir",
            str(raw_dir),
            "--report_path",
            str(out.parent / "export.json"),
            "--max_f1_drop",
            "1",
        ]
    )
    return out


def marked(tiny_bundle: Path, tmp_path: Path, faithful: bool) -> Path:
    """A copy of the tiny bundle whose record says its attributions are (not) faithful."""
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    info = json.loads((copy / INFO_FILE).read_text())
    info[EXPLANATIONS_KEY] = {**info[EXPLANATIONS_KEY], "faithful": faithful}
    (copy / INFO_FILE).write_text(json.dumps(info))
    return copy
