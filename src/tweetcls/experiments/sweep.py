"""``tweetcls sweep SPEC``: run a W&B sweep spec as an Optuna study.

Every trial is an ordinary ``tweetcls fit`` with the spec's command, the sampled
``--name=value`` arguments and an :class:`OptunaPruning` callback that reports the spec's
metric after each validation epoch. Trials run in this process or, with ``--subprocess``, one
process each. The study lives in RDB storage (SQLite by default, any SQLAlchemy URL such as
``postgresql://...`` for clusters): start the same command on several processes or machines
to share it, and start it again after a crash to resume; a trial whose worker died is retried
once, found through its missing heartbeat.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import optuna
import yaml
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState
from optuna_integration import PyTorchLightningPruningCallback
from sqlalchemy.exc import IntegrityError, OperationalError

from tweetcls.core.arguments import run_function
from tweetcls.core.atomic import write_text
from tweetcls.core.errors import ConfigError
from tweetcls.experiments.fits import FitFailed, run_fit
from tweetcls.experiments.sweep_spec import (
    SweepSpec,
    as_cli_args,
    as_overlay,
    load_spec,
    make_pruner,
    make_sampler,
    suggest,
)

#: Trial user attributes written by :class:`OptunaPruning`.
BEST_VALUE_ATTR = "best_value"
PRUNED_ATTR = "pruned_at_epoch"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class OptunaPruning(PyTorchLightningPruningCallback):
    """Reports ``monitor`` to an Optuna trial after each validation epoch; stops pruned fits.

    Optuna-integration's callback, built from storage coordinates so that it can be given on
    the command line (and so in a trial's own process, or all DDP ranks of one). Rank 0
    reports and asks the pruner; a pruned fit stops cleanly on every rank (the checkpoint and
    export callbacks still run) and marks the trial with ``pruned_at_epoch``. The best value
    seen is kept in the ``best_value`` user attribute, which the objective returns.

    Args:
        spec: The sweep spec: its metric is reported, its ``early_terminate`` prunes.
        storage: The study's RDB storage URL.
        study_name: The study's name.
        trial_number: The trial's number in the study.
    """

    def __init__(self, spec: str, storage: str, study_name: str, trial_number: int) -> None:
        sweep = load_spec(spec)
        rdb = open_storage(storage)
        # the pruner decides in this process, so it must be the spec's, not load_study's default
        study = optuna.load_study(study_name=study_name, storage=rdb, pruner=make_pruner(sweep))
        trial_id = trial_id_of(rdb, study_name, trial_number)
        super().__init__(optuna.trial.Trial(study, trial_id), sweep.metric)
        self.goal = sweep.direction
        self.best: float | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Report after each validation epoch as step ``epoch + 1``, the number of values logged
        so far: W&B's ``early_terminate`` counts iterations that way (``min_iter: 1`` means
        after the first epoch), where the base class would report the 0-based epoch."""
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            raise ConfigError(f"sweep metric {self.monitor!r} was not logged by validation")
        prune = False
        if trainer.is_global_zero:
            value = float(value)
            better = max if self.goal == "maximize" else min
            self.best = value if self.best is None else better(self.best, value)
            self._trial.set_user_attr(BEST_VALUE_ATTR, self.best)
            self._trial.report(value, step=pl_module.current_epoch + 1)
            prune = self._trial.should_prune()
            if prune:
                self._trial.set_user_attr(PRUNED_ATTR, pl_module.current_epoch + 1)
        if trainer.strategy.broadcast(prune):
            trainer.should_stop = True


def open_storage(url: str, attempts: int = 5) -> RDBStorage:
    """RDB storage with heartbeats, so that trials of a crashed worker are retried once.

    Workers started together on a new database race to create its schema; the loser of that
    race sees a unique-constraint error and simply opens the schema the winner made.
    """
    engine_kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, attempts + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=30,
                    grace_period=120,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
                )
        except (IntegrityError, OperationalError):
            if attempt == attempts:
                raise
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def trial_id_of(storage: RDBStorage, study_name: str, number: int) -> int:
    """The storage's id of trial ``number`` of study ``study_name`` (public storage API)."""
    study_id = storage.get_study_id_from_name(study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, number)


def base_values(spec: SweepSpec, extra: list[str]) -> dict[str, Any]:
    """The base config's values of the searched parameters that lie in their ranges."""
    from tweetcls.training.cli import run_cli_class
    from tweetcls.training.preprocess_cli import PreprocessCLI

    config = run_cli_class(PreprocessCLI, [*spec.fit_args()[1:], *extra], run=False).config
    values = {}
    for name, param in spec.parameters.items():
        value = config.get(name)
        dist = param["distribution"]
        if value is None or dist == "constant":
            continue
        if dist == "categorical":
            if value in param["values"]:
                values[name] = value
        elif dist == "log_uniform":  # bounds are natural-log exponents
            if math.exp(param["min"]) <= value <= math.exp(param["max"]):
                values[name] = value
        elif param["min"] <= value <= param["max"]:
            values[name] = value
    return values


def _trial_args(
    spec: SweepSpec,
    extra: list[str],
    params: dict[str, Any],
    run_dir: Path,
    storage: str,
    study_name: str,
    number: int,
) -> list[str]:
    return [
        *spec.fit_args(),
        *extra,
        *as_cli_args({**spec.fixed(), **params}),
        "--trainer.default_root_dir",
        str(run_dir),
        "--overwrite",  # the study owns its trial directories
        "true",
        "--trainer.callbacks+=tweetcls.experiments.sweep.OptunaPruning",
        "--trainer.callbacks.spec",
        str(spec.path),
        "--trainer.callbacks.storage",
        storage,
        "--trainer.callbacks.study_name",
        study_name,
        "--trainer.callbacks.trial_number",
        str(number),
    ]


def make_objective(
    spec: SweepSpec,
    extra: list[str],
    out: Path,
    storage: str,
    study_name: str,
    in_subprocess: bool,
) -> Callable[[optuna.Trial], float]:
    """The study's objective: one ``fit`` per trial, returning the best value of the metric.

    The fit's :class:`OptunaPruning` writes the trial's user attributes from its own process;
    they are read back through a storage of their own (the study's cached storage keeps
    the attributes of trials this process created as it last wrote them).
    """
    reader = open_storage(storage)

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, spec)
        run_dir = out / f"trial-{trial.number}"
        args = _trial_args(spec, extra, params, run_dir, storage, study_name, trial.number)
        trial.set_user_attr("run_dir", str(run_dir))
        print(f"trial {trial.number}: {' '.join(as_cli_args(params))}", flush=True)
        try:
            run_fit(args[1:], log=run_dir / "trial.log" if in_subprocess else None)
        except FitFailed as err:
            raise FitFailed(f"trial {trial.number}: {err}") from err
        attrs = reader.get_trial(trial_id_of(reader, study_name, trial.number)).user_attrs
        if PRUNED_ATTR in attrs:
            raise optuna.TrialPruned(f"pruned after {attrs[PRUNED_ATTR]} epoch(s)")
        if BEST_VALUE_ATTR not in attrs:
            raise FitFailed(f"trial {trial.number}: {spec.metric} was never logged")
        return attrs[BEST_VALUE_ATTR]

    return objective


def write_best_config(study: optuna.Study, spec: SweepSpec, path: Path) -> dict[str, Any] | None:
    """The best trial's parameters as a ``--config`` overlay; ``None`` before any result."""
    if not any(t.state == TrialState.COMPLETE for t in study.trials):
        return None
    best = study.best_trial
    overlay = as_overlay({**spec.fixed(), **best.params})
    header = (
        f"# Best of Optuna study {study.study_name!r} ({spec.path}): trial {best.number}, "
        f"{spec.metric} = {best.value:.4f}.\n"
        "# Use it as an overlay: tweetcls fit --config <base config> --config <this file>\n"
    )
    write_text(path, header + yaml.safe_dump(overlay, sort_keys=False))
    return overlay


def sweep(
    spec: str,
    n_trials: int = 20,
    study_name: str | None = None,
    storage: str | None = None,
    out: str | None = None,
    best_config: str | None = None,
    subprocess: bool = False,
    timeout: float | None = None,
    seed: int | None = None,
    enqueue_defaults: bool = False,
    fit_args: list[str] | None = None,
) -> optuna.Study:
    """Run a W&B sweep spec (sweeps/*.yaml) as an Optuna study; each trial is one `tweetcls fit`.

    Args:
        spec: W&B sweep spec, e.g. sweeps/minilm.yaml.
        n_trials: Finished (complete or pruned) trials the study should reach; shared by all
            workers of the study.
        study_name: Study name; default: the spec's file name.
        storage: SQLAlchemy URL of the study; default ``sqlite:///<out>/study.db``.
        out: Trial run directories; default ``runs/sweeps/<study>``.
        best_config: Where the best parameters are written as a ``--config`` overlay;
            default ``<out>/best.yaml``.
        subprocess: Run each trial in its own process (log in ``<trial dir>/trial.log``).
        timeout: Stop starting trials after this many seconds.
        seed: Sampler seed (a fixed seed repeats a study).
        enqueue_defaults: Make the first trial the base config's own values: the study's
            reference.
        fit_args: Arguments of every trial's fit, before the sampled ones, given on the command
            line after ``--`` (e.g. ``-- --trainer.max_epochs 1``).
    """
    extra = list(fit_args or [])
    if n_trials < 1:
        raise ConfigError(f"--n_trials: must be >= 1, got {n_trials}")
    loaded = load_spec(spec)
    name = study_name or loaded.path.stem
    root = Path(out or f"runs/sweeps/{name}")
    storage_url = storage or f"sqlite:///{root}/study.db"
    study = optuna.create_study(
        study_name=name,
        storage=open_storage(storage_url),
        sampler=make_sampler(loaded, seed),
        pruner=make_pruner(loaded),
        direction=loaded.direction,
        load_if_exists=True,
    )
    optuna.logging.set_verbosity(logging.INFO)
    if enqueue_defaults and not study.trials:
        defaults = base_values(loaded, extra)
        print(f"trial 0 is the base config: {' '.join(as_cli_args(defaults))}")
        study.enqueue_trial(defaults, user_attrs={"reference": True})
    done = len(study.get_trials(deepcopy=False, states=FINISHED))
    print(f"study {name!r} in {storage_url}: {done} of {n_trials} trials finished")
    if done < n_trials:
        study.optimize(
            make_objective(loaded, extra, root, storage_url, name, subprocess),
            n_trials=n_trials - done,
            timeout=timeout,
            catch=(FitFailed,),
            callbacks=[optuna.study.MaxTrialsCallback(n_trials, states=FINISHED)],
            show_progress_bar=True,
            gc_after_trial=True,
        )
    best_path = Path(best_config or root / "best.yaml")
    if write_best_config(study, loaded, best_path) is not None:
        print(
            f"best: trial {study.best_trial.number}, {loaded.metric} = {study.best_value:.4f}, "
            f"overlay {best_path}"
        )
    return study


def run(args: list[str], prog: str = "tweetcls sweep") -> optuna.Study:
    """``tweetcls sweep SPEC [OPTIONS] -- FIT_ARGS``: parse ``args`` and run the study."""
    return run_function(sweep, args, prog, forwards_to_fit=True, as_positional=True)


def main(args: list[str] | None = None, prog: str = "tweetcls sweep") -> None:
    """Run ``tweetcls sweep``."""
    run(list(args or []), prog)
