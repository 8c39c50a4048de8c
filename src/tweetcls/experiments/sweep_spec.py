"""W&B sweep specs (``sweeps/*.yaml``) read for Optuna: search space, sampler, pruner, command.

The same file drives ``wandb sweep`` unchanged. The mapping from W&B to Optuna:

=========================  ==============================================================
W&B                        Optuna
=========================  ==============================================================
``method: bayes``          ``TPESampler`` (W&B uses a Gaussian process; TPE is Optuna's)
``method: random``         ``RandomSampler``
``method: grid``           ``GridSampler`` (every parameter needs ``values``/``value``)
``value``                  fixed argument, not searched
``values`` (categorical)   ``suggest_categorical``
``int_uniform``            ``suggest_int(min, max)``
``uniform``                ``suggest_float(min, max)``
``q_uniform``              ``suggest_float(min, max, step=q)``
``log_uniform_values``     ``suggest_float(min, max, log=True)``
``log_uniform``            ``suggest_float(exp(min), exp(max), log=True)``
``early_terminate``        ``HyperbandPruner(min_iter, max_iter, eta)``; absent: no pruning
=========================  ==============================================================

Other W&B distributions (normal, beta, quantised log) have no bounded Optuna equivalent and
are rejected with the parameter's name.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml

from tweetcls.core.errors import ConfigError

#: W&B's command macros that expand to the sampled arguments (``--name=value``).
ARGS_MACRO = "${args}"
#: W&B macros for the launcher part of the command; Optuna runs ``python -m tweetcls``.
LAUNCHER_MACROS = ("${env}", "${interpreter}", "${program}")

_DISTRIBUTIONS = (
    "constant",
    "categorical",
    "int_uniform",
    "uniform",
    "q_uniform",
    "log_uniform",
    "log_uniform_values",
)
_METHODS = ("bayes", "random", "grid")


@dataclass
class SweepSpec:
    """A validated W&B sweep spec."""

    path: Path
    method: str
    metric: str
    goal: str
    parameters: dict[str, dict[str, Any]]
    command: list[str]
    early_terminate: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def direction(self) -> str:
        return "maximize" if self.goal == "maximize" else "minimize"

    def fixed(self) -> dict[str, Any]:
        """Parameters with a single ``value``: passed to every trial, never searched."""
        return {n: p["value"] for n, p in self.parameters.items() if "value" in p}

    def fit_args(self) -> list[str]:
        """The command after ``python -m tweetcls``, without ``${args}``: e.g. fit --config X."""
        args = [str(part) for part in self.command if str(part) not in LAUNCHER_MACROS]
        while args and args[0] in ("python", "python3", "-m", "tweetcls"):
            args.pop(0)
        if ARGS_MACRO not in args:
            raise ConfigError(f"{self.path}: command: must contain {ARGS_MACRO}")
        if not args or args[0] != "fit":
            raise ConfigError(
                f"{self.path}: command: must run `python -m tweetcls fit ...`, "
                f"got {shlex.join(map(str, self.command))}"
            )
        return [arg for arg in args if arg != ARGS_MACRO]


def _distribution(name: str, param: dict[str, Any], where: str) -> str:
    if not isinstance(param, dict):
        raise ConfigError(f"{where}: must be a mapping with value, values or min/max")
    if "parameters" in param:
        raise ConfigError(f"{where}: nested parameters are not supported; use dotted names")
    dist = param.get("distribution")
    if dist is None:
        if "value" in param:
            dist = "constant"
        elif "values" in param:
            dist = "categorical"
        elif "min" in param and "max" in param:
            ints = all(isinstance(param[k], int) for k in ("min", "max"))
            dist = "int_uniform" if ints else "uniform"
        else:
            raise ConfigError(f"{where}: needs value, values, or min and max")
    if dist not in _DISTRIBUTIONS:
        raise ConfigError(
            f"{where}: distribution {dist!r} has no Optuna equivalent here; "
            f"use one of {', '.join(_DISTRIBUTIONS)}"
        )
    if dist == "categorical" and not (isinstance(param.get("values"), list) and param["values"]):
        raise ConfigError(f"{where}: values: must be a non-empty list")
    if dist == "constant" and "value" not in param:
        raise ConfigError(f"{where}: distribution constant needs value")
    if dist not in ("constant", "categorical"):
        for key in ("min", "max"):
            if not isinstance(param.get(key), int | float) or isinstance(param.get(key), bool):
                raise ConfigError(f"{where}: {key}: must be a number, got {param.get(key)!r}")
        if param["min"] >= param["max"]:
            raise ConfigError(f"{where}: min ({param['min']}) must be below max ({param['max']})")
        if dist == "log_uniform_values" and param["min"] <= 0:
            raise ConfigError(f"{where}: min: must be > 0 for log_uniform_values")
    return dist


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a W&B sweep spec; every error names the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: sweep spec not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a mapping (a W&B sweep spec)")
    method = raw.get("method")
    if method not in _METHODS:
        raise ConfigError(f"{path}: method: must be one of {', '.join(_METHODS)}, got {method!r}")
    metric = raw.get("metric")
    if not isinstance(metric, dict) or not isinstance(metric.get("name"), str):
        raise ConfigError(f"{path}: metric: needs name (e.g. val/f1) and goal")
    goal = metric.get("goal", "minimize")
    if goal not in ("maximize", "minimize"):
        raise ConfigError(f"{path}: metric.goal: must be maximize or minimize, got {goal!r}")
    params = raw.get("parameters")
    if not isinstance(params, dict) or not params:
        raise ConfigError(f"{path}: parameters: must be a non-empty mapping")
    parameters = {}
    for name, param in params.items():
        dist = _distribution(name, param, f"{path}: parameters.{name}")
        parameters[name] = {**param, "distribution": dist}
        if method == "grid" and dist not in ("constant", "categorical"):
            raise ConfigError(f"{path}: parameters.{name}: method grid needs values or value")
    command = raw.get("command")
    if not isinstance(command, list) or not command:
        raise ConfigError(f"{path}: command: must be a list such as [python, -m, tweetcls, ...]")
    early = raw.get("early_terminate")
    if early is not None:
        if not isinstance(early, dict) or early.get("type") != "hyperband":
            raise ConfigError(f"{path}: early_terminate: only type hyperband exists in W&B")
        if "min_iter" not in early and "max_iter" not in early:
            raise ConfigError(f"{path}: early_terminate: needs min_iter or max_iter")
    spec = SweepSpec(
        path=path,
        method=method,
        metric=metric["name"],
        goal=goal,
        parameters=parameters,
        command=[str(part) for part in command],
        early_terminate=early,
        raw=raw,
    )
    spec.fit_args()  # validates the command
    return spec


def suggest(trial: optuna.Trial, spec: SweepSpec) -> dict[str, Any]:
    """Sample every searched parameter of ``spec`` with ``trial``."""
    params = {}
    for name, param in spec.parameters.items():
        dist = param["distribution"]
        if dist == "constant":
            continue
        if dist == "categorical":
            params[name] = trial.suggest_categorical(name, param["values"])
        elif dist == "int_uniform":
            params[name] = trial.suggest_int(name, int(param["min"]), int(param["max"]))
        elif dist == "uniform":
            params[name] = trial.suggest_float(name, param["min"], param["max"])
        elif dist == "q_uniform":
            q = param.get("q", 1)
            params[name] = trial.suggest_float(name, param["min"], param["max"], step=q)
        elif dist == "log_uniform_values":
            params[name] = trial.suggest_float(name, param["min"], param["max"], log=True)
        elif dist == "log_uniform":
            low, high = math.exp(param["min"]), math.exp(param["max"])
            params[name] = trial.suggest_float(name, low, high, log=True)
    return params


def make_sampler(spec: SweepSpec, seed: int | None = None) -> optuna.samplers.BaseSampler:
    if spec.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.method == "grid":
        space = {
            name: param["values"]
            for name, param in spec.parameters.items()
            if param["distribution"] == "categorical"
        }
        return optuna.samplers.GridSampler(space, seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    """``early_terminate: hyperband`` as Optuna's Hyperband; otherwise nothing is pruned.

    W&B counts iterations as logged values of the metric; the pruning callback reports one
    value per validation epoch, so both engines stop trials at the same epochs.
    """
    early = spec.early_terminate
    if early is None:
        return optuna.pruners.NopPruner()
    eta = early.get("eta", 3)
    if "min_iter" in early:
        min_resource = int(early["min_iter"])
    else:
        min_resource = max(1, int(early["max_iter"] / eta ** early.get("s", 0)))
    return optuna.pruners.HyperbandPruner(
        min_resource=min_resource,
        max_resource=early.get("max_iter", "auto"),
        reduction_factor=eta,
    )


def as_cli_args(params: dict[str, Any]) -> list[str]:
    """``--name=value`` arguments, formatted as a W&B agent formats ``${args}``."""
    return [f"--{name}={value}" for name, value in params.items()]


def as_overlay(params: dict[str, Any]) -> dict[str, Any]:
    """Dotted parameter names as a nested LightningCLI config (``--config`` overlay)."""
    overlay: dict[str, Any] = {}
    for name, value in params.items():
        *parents, leaf = name.split(".")
        node = overlay
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return overlay
