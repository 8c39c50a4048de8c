"""Golden files: deterministic outputs, compared exactly with ``tests/data/expected/``.

Each ``*_text`` function renders one output as the exact text of its expected file; the tests
compare with :func:`assert_golden` and ``tests/data/regenerate`` writes the files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import distribution_to_json

from helpers.paths import ROOT
from tweetcls.experiments.sweep import _trial_args, base_values
from tweetcls.experiments.sweep_spec import (
    as_cli_args,
    load_spec,
    make_pruner,
    make_sampler,
    suggest,
)

EXPECTED = ROOT / "tests" / "data" / "expected"
REGENERATE = "tests/data/regenerate"
#: The golden files and what each holds.
FILES = {
    "data_report.json": "reports/data.json of `preprocess` on the pulled raw data",
    "sweep_specs.json": "sweeps/*.yaml read as Optuna studies (search space, sampler, trial args)",
    "export_report_keys.json": "the nested keys of export.json (values vary across hosts)",
}
#: Stands for the test-local tiny model directory in the preprocess report.
TINY_MODEL = "<tiny_model_dir>"


def render(value: Any) -> str:
    return json.dumps(value, indent=2) + "\n"


def assert_golden(name: str, actual: str) -> None:
    """``actual`` equals ``tests/data/expected/<name>`` exactly."""
    path = EXPECTED / name
    hint = (
        f"{path.relative_to(ROOT)} differs from this output ({FILES[name]}); if the change is "
        f"intended, run {REGENERATE} and commit the new file with it"
    )
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing: run {REGENERATE}"
    assert actual == path.read_text(), hint


def data_report_text(report_path: Path, tiny_model_dir: Path) -> str:
    """The preprocess report, with the test-local tokenizer path replaced by a placeholder."""
    report = json.loads(Path(report_path).read_text())
    tokenizer = report["token_length"]["tokenizer"]
    assert tokenizer == str(tiny_model_dir), tokenizer
    report["token_length"]["tokenizer"] = TINY_MODEL
    return render(report)


def key_structure(value: Any) -> Any:
    """The nested keys of a JSON object, every other value replaced by ``None``."""
    if isinstance(value, dict):
        return {key: key_structure(item) for key, item in value.items()}
    return None


def export_report_keys_text(report_path: Path) -> str:
    return render(key_structure(json.loads(Path(report_path).read_text())))


def _pruner(pruner: optuna.pruners.BasePruner) -> dict[str, Any]:
    if isinstance(pruner, optuna.pruners.HyperbandPruner):
        return {
            "type": "HyperbandPruner",
            "min_resource": pruner._min_resource,
            "max_resource": pruner._max_resource,
            "reduction_factor": pruner._reduction_factor,
        }
    return {"type": type(pruner).__name__}


def sweep_mapping(relative_spec: str) -> dict[str, Any]:
    """One spec (a path relative to the repository, the working directory) as Optuna sees it."""
    spec = load_spec(relative_spec)
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(0)).ask()
    suggest(trial, spec)
    defaults = base_values(spec, [])
    return {
        "method": spec.method,
        "sampler": type(make_sampler(spec, seed=0)).__name__,
        "metric": spec.metric,
        "direction": spec.direction,
        "pruner": _pruner(make_pruner(spec)),
        "search_space": {
            name: json.loads(distribution_to_json(dist))
            for name, dist in trial.distributions.items()
        },
        "fixed": spec.fixed(),
        "fit_args": spec.fit_args(),
        "fixed_args": as_cli_args(spec.fixed()),
        "enqueue_defaults": defaults,
        # trial 0 of `sweep --enqueue-defaults`, with placeholders for the run's paths
        "trial_0_args": _trial_args(
            spec, [], defaults, Path("<out>/trial-0"), "<storage>", "<study>", 0
        ),
    }


def sweep_specs_text() -> str:
    """Every ``sweeps/*.yaml``; paths relative to the repository (read from ``ROOT``)."""
    saved = Path.cwd()
    os.chdir(ROOT)
    try:
        specs = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "sweeps").glob("*.yaml"))
        return render({spec: sweep_mapping(spec) for spec in specs})
    finally:
        os.chdir(saved)
