"""Experiment tracking: W&B logging that never blocks training, and run provenance.

``configs/logger/wandb.yaml`` turns it on for any config::

    python -m tweetcls fit --config configs/minilm.yaml --config configs/logger/wandb.yaml

Without W&B credentials (``WANDB_API_KEY`` or ``wandb login``) runs log offline into
``<default_root_dir>/wandb/offline-run-*``; ``wandb sync <that dir>`` uploads them later.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Literal

import yaml
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn

from tweetcls.core.provenance import provenance

#: Where ``wandb login`` stores the API key.
_WANDB_HOST = "api.wandb.ai"


def wandb_credentials_available() -> bool:
    """Whether an online W&B run could authenticate (API key in the env or in ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(_WANDB_HOST) is not None
    except (OSError, netrc.NetrcParseError):
        return False


class TrackedWandbLogger(WandbLogger):
    """Lightning's WandbLogger that falls back to offline mode instead of failing.

    Offline is chosen when no W&B credentials exist, when ``WANDB_MODE`` says so, or when
    the W&B server cannot be reached; checkpoints are still logged as artifacts (uploaded by
    ``wandb sync``). The run is finished when training ends, so in-process runs (sweep trials,
    tests) each get their own. ``val/f1`` is summarised by its maximum, the value sweeps rank.

    Args:
        project: W&B project.
        name: Run name; ``None`` lets W&B pick one.
        save_dir: Parent of the ``wandb/`` run directory; ``None`` uses the trainer's
            ``default_root_dir``.
        log_model: Log the best and last checkpoints as ``model`` artifacts at the end.
        offline: Force offline (``True``) or online (``False``); ``None`` decides as above.
        entity: W&B team or user; ``None`` uses the account's default.
        tags: Run tags.
        summary_max: Metrics whose run summary is their maximum rather than the last value.
        init_timeout: Seconds to wait for the W&B server before going offline.
    """

    def __init__(
        self,
        project: str = "tweetcls",
        name: str | None = None,
        save_dir: str | None = None,
        log_model: bool | Literal["all"] = True,
        offline: bool | None = None,
        entity: str | None = None,
        tags: list[str] | None = None,
        summary_max: tuple[str, ...] = ("val/f1", "val/f1_tuned"),
        init_timeout: float = 30.0,
    ) -> None:
        mode = os.environ.get("WANDB_MODE", "")
        if offline is None:
            offline = mode in ("offline", "dryrun") or not wandb_credentials_available()
        import wandb

        super().__init__(
            project=project,
            name=name,
            save_dir=save_dir or ".",
            offline=offline,
            entity=entity,
            tags=tags,
            settings=wandb.Settings(init_timeout=init_timeout, silent=True),
        )
        # Lightning refuses log_model with offline; W&B stores artifacts for `wandb sync`
        self._log_model = log_model
        if offline:
            self._wandb_init["mode"] = "offline"
        self.summary_max = tuple(summary_max)

    @property
    @rank_zero_experiment
    def experiment(self):
        """The W&B run; created on first use, offline if the server cannot be reached."""
        if self._experiment is None:
            try:
                run = WandbLogger.experiment.fget(self)
            except Exception as err:  # wandb raises many types for an unreachable server
                rank_zero_warn(f"W&B unreachable ({err!s:.200}); logging offline instead")
                self._offline = True
                self._experiment = None
                self._wandb_init["mode"] = "offline"
                run = WandbLogger.experiment.fget(self)
            for metric in self.summary_max:
                run.define_metric(metric, summary="max")
        return self._experiment

    @rank_zero_only
    def finalize(self, status: str) -> None:
        super().finalize(status)
        if self._experiment is not None:
            self._experiment.finish(exit_code=0 if status == "success" else 1)
            self._experiment = None


class TrackedSaveConfigCallback(SaveConfigCallback):
    """Saves ``config.yaml`` as LightningCLI does, and gives the logger the whole resolved
    config and the run's provenance (git commit, DVC hash of the raw data)."""

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if trainer.logger is None:
            return
        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        raw_dir = getattr(trainer.datamodule, "raw_dir", "data/raw")
        params = {"provenance": provenance(raw_dir)}
        if isinstance(trainer.logger, WandbLogger):
            params["cli"] = config  # other loggers already get config.yaml in their log_dir
        trainer.logger.log_hyperparams(params)
        if not isinstance(trainer.logger, WandbLogger):
            return
        # where setup() saved it (trainer.log_dir of a WandbLogger); not trainer.log_dir
        # itself: that is a collective call and this method runs on rank 0 only
        saved = Path(trainer.logger.save_dir or ".") / self.config_filename
        if saved.is_file():
            # the YAML itself too, so `tweetcls fit --config <it>` repeats the run
            trainer.logger.experiment.save(str(saved), base_path=str(saved.parent), policy="now")
