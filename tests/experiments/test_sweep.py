"""Sweep specs (W&B format) and the Optuna runner: mapping, agent commands, studies, workers."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from contextlib import ExitStack

import optuna
import pytest
import yaml
from helpers.golden import assert_golden, sweep_specs_text
from helpers.paths import ROOT, TINY_CONFIG, tiny_args
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args

from tweetcls.cli import main
from tweetcls.core.errors import ConfigError
from tweetcls.experiments.sweep import base_values, open_storage, run
from tweetcls.experiments.sweep_spec import load_spec, make_pruner, make_sampler, suggest
from tweetcls.training.cli import run_cli_class
from tweetcls.training.preprocess_cli import PreprocessCLI

SPECS = sorted((ROOT / "sweeps").glob("*.yaml"))


def write_spec(tmp_path, parameters: dict, **extra) -> str:
    spec = {
        "method": "bayes",
        "metric": {"name": "val/f1", "goal": "maximize"},
        "parameters": parameters,
        "command": ["${env}", "python", "-m", "tweetcls", "fit", "--config", "x.yaml", "${args}"],
        **extra,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_each_wandb_distribution_maps_to_its_optuna_distribution(tmp_path):
    spec = load_spec(
        write_spec(
            tmp_path,
            {
                "a": {"values": [16, 32]},
                "b": {"distribution": "int_uniform", "min": 1, "max": 4},
                "c": {"distribution": "uniform", "min": 0.0, "max": 0.5},
                "d": {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.25},
                "e": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-3},
                "f": {"distribution": "log_uniform", "min": -2.0, "max": 0.0},
                "g": {"value": 3},
                "h": {"min": 2, "max": 5},  # no distribution: int_uniform, as in W&B
            },
        )
    )
    trial = optuna.create_study().ask()
    params = suggest(trial, spec)
    dists = trial.distributions
    assert dists["a"] == CategoricalDistribution([16, 32])
    assert dists["b"] == IntDistribution(1, 4)
    assert dists["c"] == FloatDistribution(0.0, 0.5)
    assert dists["d"] == FloatDistribution(0.0, 1.0, step=0.25)
    assert dists["e"] == FloatDistribution(1e-5, 1e-3, log=True)
    assert dists["f"] == FloatDistribution(math.exp(-2.0), 1.0, log=True)
    assert dists["h"] == IntDistribution(2, 5)
    assert "g" not in params and spec.fixed() == {"g": 3}


def test_method_and_early_terminate_map_to_sampler_and_pruner(tmp_path):
    grid = load_spec(write_spec(tmp_path, {"a": {"values": [1, 2]}}, method="grid"))
    assert isinstance(make_sampler(grid), optuna.samplers.GridSampler)
    spec = load_spec(
        write_spec(
            tmp_path,
            {"a": {"values": [1, 2]}},
            early_terminate={"type": "hyperband", "min_iter": 1, "max_iter": 4, "eta": 2},
        )
    )
    assert isinstance(make_sampler(spec), optuna.samplers.TPESampler)
    pruner = make_pruner(spec)
    assert isinstance(pruner, optuna.pruners.HyperbandPruner)
    assert (pruner._min_resource, pruner._max_resource, pruner._reduction_factor) == (1, 4, 2)


@pytest.mark.parametrize(
    ("parameters", "extra", "message"),
    [
        ({"a": {"distribution": "normal", "mu": 0, "sigma": 1}}, {}, "parameters.a: distribution"),
        ({"a": {"min": 1.0, "max": 0.5}}, {}, "parameters.a: min (1.0) must be below max"),
        ({"a": {"parameters": {"b": {"value": 1}}}}, {}, "nested parameters"),
        ({"a": {"min": 0.0, "max": 1.0}}, {"method": "grid"}, "method grid needs values"),
        ({"a": {"values": [1]}}, {"method": "hyperopt"}, "method: must be one of"),
        ({"a": {"values": [1]}}, {"command": ["python", "train.py"]}, "must contain ${args}"),
        ({"a": {"values": [1]}}, {"early_terminate": {"type": "envelope"}}, "hyperband"),
    ],
)
def test_bad_specs_name_file_and_key(tmp_path, parameters, extra, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_spec(write_spec(tmp_path, parameters, **extra))


def test_missing_or_malformed_spec_exits_with_one_clear_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(tmp_path / "nope.yaml")])
    assert exc.value.code == 2
    assert (
        capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope.yaml'}: sweep spec not found"
    )
    (tmp_path / "bad.yaml").write_text("method: [unclosed\n")
    with pytest.raises(SystemExit):
        main(["sweep", str(tmp_path / "bad.yaml")])
    assert "bad.yaml: not valid YAML" in capsys.readouterr().err


def agent_command(spec_path, seed: int = 0) -> list[str]:
    """The command a W&B agent runs for one sampled parameter set (wandb's own helpers)."""
    spec = load_spec(spec_path)
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed)).ask()
    params = {**spec.fixed(), **suggest(trial, spec)}
    sweep_vars = create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})
    sweep_vars.update(env=["/usr/bin/env"], interpreter=["python"], program=["tweetcls"])
    command = []
    for part in create_sweep_command(list(spec.raw["command"])):
        if part.startswith("${") and part.endswith("}"):
            command += sweep_vars.get(part[2:-1]) or []
        else:
            command.append(part)
    return command


@pytest.mark.parametrize("spec_path", SPECS, ids=[p.stem for p in SPECS])
def test_wandb_agent_command_parses_with_the_cli(spec_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the specs' config paths are relative to the repository
    command = agent_command(spec_path)
    assert command[:5] == ["/usr/bin/env", "python", "-m", "tweetcls", "fit"]
    config = run_cli_class(PreprocessCLI, command[5:], run=False).config
    for arg in command:
        if arg.startswith("--") and "=" in arg and "enable_" not in arg:
            name, value = arg[2:].split("=", 1)
            assert str(config[name]).lower() == value.lower(), name  # True is `true`


def test_wandb_agent_command_trains_the_tiny_model(tiny_args_no_config, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    command = agent_command(ROOT / "sweeps" / "tiny.yaml", seed=3)
    main([*command[4:], *tiny_args_no_config, "--trainer.limit_train_batches", "5"])
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()


@pytest.fixture
def tiny_args_no_config(raw_dir, processed_dir, tiny_model_dir, tmp_path):
    """Test-local paths for the tiny config, without another --config (it would reset the
    sampled values)."""
    args = tiny_args(raw_dir, processed_dir, tiny_model_dir, tmp_path / "cache")
    assert args[0] == "--config"
    return [*args[2:], "--trainer.default_root_dir", str(tmp_path / "run")]


def sweep_args(tmp_path, name: str, n_trials: int, tiny_args_no_config, *extra: str):
    return [
        str(ROOT / "sweeps" / "tiny.yaml"),
        "--n_trials",
        str(n_trials),
        "--storage",
        f"sqlite:///{tmp_path}/study.db",
        "--study_name",
        name,
        "--out",
        str(tmp_path / name),
        *extra,
        "--",
        "--config",
        str(TINY_CONFIG),
        *tiny_args_no_config[:-2],  # trials get their own default_root_dir
    ]


def test_three_trial_study_prunes_the_weak_trial_and_resumes(tiny_args_no_config, tmp_path):
    name = "prune"
    storage = f"sqlite:///{tmp_path}/study.db"
    study = optuna.create_study(
        study_name=name, storage=open_storage(storage), direction="maximize"
    )
    # two trials that learn and one that cannot: hyperband stops it after its first epoch
    for lr in (3e-3, 3e-3, 1e-4):
        study.enqueue_trial({"model.learning_rate": lr, "data.batch_size": 64})
    args = sweep_args(tmp_path, name, 2, tiny_args_no_config)
    args = [*args, "--trainer.limit_train_batches", "80"]
    first = run(args)
    states = [t.state for t in first.trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.WAITING]
    args[args.index("--n_trials") + 1] = "3"
    study = run(args)  # resumes: one more trial, not three
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED], [
        (t.intermediate_values, t.system_attrs) for t in study.trials
    ]
    pruned = study.trials[2]
    assert list(pruned.intermediate_values) == [1], [t.intermediate_values for t in study.trials]
    assert pruned.user_attrs["pruned_at_epoch"] == 1
    best = study.best_trial
    assert best.value == pytest.approx(max(best.intermediate_values.values()))
    overlay = yaml.safe_load((tmp_path / name / "best.yaml").read_text())
    assert overlay["model"]["learning_rate"] == pytest.approx(3e-3)
    assert overlay["trainer"]["max_epochs"] == 2  # the spec's fixed value is part of it
    # the overlay loads as a --config on top of the base config
    config = run_cli_class(
        PreprocessCLI,
        ["--config", str(TINY_CONFIG), "--config", str(tmp_path / name / "best.yaml")],
        run=False,
    ).config
    assert config.model.learning_rate == pytest.approx(3e-3)
    assert config.data.batch_size == overlay["data"]["batch_size"]


def test_workers_racing_to_create_a_new_study_database_all_open_it(tmp_path):
    # new workers race to create the schema; the losers must open it, not crash
    url = f"sqlite:///{tmp_path}/race.db"
    code = (
        "import sys; from tweetcls.experiments.sweep import open_storage; open_storage(sys.argv[1])"
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [worker.communicate(timeout=300)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [0] * 4, "\n".join(errors)


def test_two_workers_share_one_sqlite_study(tiny_args_no_config, tmp_path):
    args = [
        *sweep_args(tmp_path, "shared", 2, tiny_args_no_config, "--subprocess"),
        "--trainer.limit_train_batches",
        "5",
    ]
    with ExitStack() as stack:
        logs = [stack.enter_context(open(tmp_path / f"worker{i}.log", "w")) for i in range(2)]
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "tweetcls", "sweep", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=os.environ.copy(),
            )
            for log in logs
        ]
        codes = [worker.wait(timeout=600) for worker in workers]
    failed = [i for i, code in enumerate(codes) if code]
    assert not failed, "\n".join((tmp_path / f"worker{i}.log").read_text()[-3000:] for i in failed)
    study = optuna.load_study(study_name="shared", storage=f"sqlite:///{tmp_path}/study.db")
    trials = study.get_trials()
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(trials)))  # none lost, none twice
    # each worker stops once 2 are finished; both may have had one running at that moment
    assert 2 <= len(trials) <= 3
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    run_dirs = [t.user_attrs["run_dir"] for t in trials]
    assert len(set(run_dirs)) == len(trials)
    for trial in trials:
        assert (tmp_path / "shared" / f"trial-{trial.number}" / "trial.log").is_file()
    ran = [
        set(re.findall(r"trial (\d+): --", (tmp_path / f"worker{i}.log").read_text()))
        for i in range(2)
    ]
    assert ran[0] and ran[1] and not ran[0] & ran[1]  # both worked, on different trials


def test_sweep_specs_map_to_the_golden_studies():
    """Search space, sampler, pruner, fixed arguments and trial 0's fit arguments of every
    sweeps/*.yaml, as the Optuna runner derives them."""
    assert_golden("sweep_specs.json", sweep_specs_text())


def test_enqueue_defaults_reads_the_base_config(monkeypatch):
    monkeypatch.chdir(ROOT)
    values = base_values(load_spec(ROOT / "sweeps" / "minilm.yaml"), [])
    base = yaml.safe_load((ROOT / "configs" / "minilm.yaml").read_text())
    assert values == {
        "model.learning_rate": base["model"]["learning_rate"],
        "model.weight_decay": base["model"]["weight_decay"],
        "model.warmup_ratio": base["model"]["warmup_ratio"],
        "model.classifier_dropout": base["model"]["classifier_dropout"],
        "data.batch_size": base["data"]["batch_size"],
        "data.use_keyword": base["data"]["use_keyword"],
        "trainer.max_epochs": base["trainer"]["max_epochs"],
    }
