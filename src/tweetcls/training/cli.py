"""``tweetcls fit|validate|test|predict``: LightningCLI with tweetcls' model and data.

Every command reads the same experiment YAML (``preprocess`` too, see
:mod:`tweetcls.training.preprocess_cli`). The model's ``pretrained_model`` is linked to
the DataModule's tokenizer, and run outputs (checkpoints, exported model) are placed under
``trainer.default_root_dir``.

The callbacks every run has are argument groups of the CLI with tweetcls' defaults, not
entries of ``trainer.callbacks``: ``early_stopping``, ``lr_monitor``, ``recovery``,
``checkpoint``, ``export``, ``report`` and ``submission``. A config or the command line changes
one setting of them (``--early_stopping.patience 5``, ``recovery: {every_n_train_steps: 20}``);
``trainer.callbacks`` is left for extra ones (``--trainer.callbacks+=...``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from jsonargparse import Namespace
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI

from tweetcls.core.commands import ENV_PREFIX, PROG
from tweetcls.core.errors import ConfigError
from tweetcls.core.host import BF16_FLAGS, cpu_flags
from tweetcls.core.logs import quiet_libraries
from tweetcls.core.overwrite import refuse_to_replace
from tweetcls.data.datamodule import DisasterTweetsDataModule
from tweetcls.models.classifier import TweetClassifier
from tweetcls.training.callbacks import (
    ExportBestModel,
    RecoveryCheckpoint,
    SubmissionWriter,
    TestReport,
)
from tweetcls.training.checkpointing import RelativeModelCheckpoint
from tweetcls.training.tracking import TrackedSaveConfigCallback, TrackedWandbLogger


def _under_root(leaf: str):
    def compute(root: str | Path | None) -> str:
        return str(Path(root or ".") / leaf)

    return compute


DESCRIPTION = (
    "Fine-tune a Hugging Face encoder to tell disaster tweets from others, and evaluate it. "
    "`tweetcls --help` lists the other commands."
)


#: The callback groups that replace entries of ``trainer.callbacks``: (group, class,
#: defaults, help). Added before ``checkpoint``, in the order the configs used to list them.
DEFAULT_CALLBACKS: tuple[tuple[str, type, dict[str, Any], str], ...] = (
    (
        "early_stopping",
        EarlyStopping,
        {"monitor": "val/f1", "mode": "max", "patience": 2},
        "Stops fit when val/f1 has not improved for `patience` validations. Change it with "
        "e.g. `--early_stopping.patience 5` or `early_stopping: {patience: 5}` in a config; "
        "a patience of trainer.max_epochs or more (one validation per epoch) turns it off.",
    ),
    (
        "lr_monitor",
        LearningRateMonitor,
        {"logging_interval": "step"},
        "Logs the learning rate of each parameter group (lr-AdamW/pg1, ...). Change it with "
        "e.g. `--lr_monitor.logging_interval epoch`.",
    ),
    (
        "recovery",
        RecoveryCheckpoint,
        {"every_n_train_steps": 100},
        "Saves <default_root_dir>/checkpoints/last.ckpt every N optimizer steps and on "
        "SIGTERM; resume with `--ckpt_path last`. Change it with e.g. "
        "`--recovery.every_n_train_steps 20`.",
    ),
)


def _checkpoint_will_load(ckpt_path: str | Path | None, checkpoint_dir: str | None) -> bool:
    """Whether Lightning will restore the weights from ``ckpt_path``.

    True for an existing file, and for ``last`` when ``checkpoint_dir`` holds a ``last*.ckpt``
    (what Lightning then picks). ``last`` without one, ``hpc`` and registry or remote names
    may load nothing: the model then needs its pretrained weights as without ``ckpt_path``.
    """
    if not ckpt_path:
        return False
    if str(ckpt_path) == "last":
        folder = Path(checkpoint_dir) if checkpoint_dir else None
        return folder is not None and folder.is_dir() and any(folder.glob("last*.ckpt"))
    return Path(ckpt_path).is_file()


#: The subcommands that score a trained model: without ``--ckpt_path`` they refuse to run.
EVALUATIONS = ("validate", "test", "predict")


def _no_checkpoint_message(subcommand: str, checkpoint_dir: str | None) -> str:
    """What to do when ``subcommand`` was given no checkpoint (never score an untrained head)."""
    best = Path(checkpoint_dir or "checkpoints") / "best.ckpt"
    found = (
        f"`--ckpt_path {best}` (this config's best checkpoint)"
        if best.is_file()
        else f"`--ckpt_path` with a checkpoint of `tweetcls fit` (none at {best}: fit first)"
    )
    return (
        f"{subcommand}: no --ckpt_path, so it would score the pretrained encoder with an "
        f"untrained classification head; add {found}, or `--untrained true` to do so on purpose"
    )


#: The callbacks whose outputs each subcommand writes (each has ``outputs(root)``), and the
#: flags that write them elsewhere: checked by the overwrite rule (:mod:`tweetcls.core.overwrite`).
WRITERS: dict[str, tuple[tuple[type, ...], str]] = {
    "fit": (
        (RelativeModelCheckpoint, ExportBestModel),
        "`--trainer.default_root_dir`, or resume the run with `--ckpt_path last`",
    ),
    "test": ((TestReport,), "`--report.dirpath`"),
    "predict": ((SubmissionWriter,), "`--submission.path`"),
}


class TweetCLI(LightningCLI):
    """LightningCLI with tweetcls' linked arguments and artifact callbacks."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("model.pretrained_model", "data.pretrained_model")
        for key, callback, defaults, help_text in DEFAULT_CALLBACKS:
            parser.add_lightning_class_args(callback, key)
            parser.set_defaults({f"{key}.{name}": value for name, value in defaults.items()})
            parser.groups[key].description = help_text
        parser.add_lightning_class_args(RelativeModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/f1",
                "checkpoint.mode": "max",
                "checkpoint.filename": "best",
                "checkpoint.save_last": True,
                "checkpoint.enable_version_counter": False,
            }
        )
        parser.link_arguments(
            "trainer.default_root_dir", "checkpoint.dirpath", compute_fn=_under_root("checkpoints")
        )
        parser.add_lightning_class_args(ExportBestModel, "export")
        parser.link_arguments(
            "trainer.default_root_dir", "export.dirpath", compute_fn=_under_root("model")
        )
        parser.add_lightning_class_args(TestReport, "report")
        parser.add_lightning_class_args(SubmissionWriter, "submission")
        parser.add_argument(
            "--untrained",
            type=bool,
            default=False,
            help="validate, test and predict: run without --ckpt_path, i.e. score the "
            "pretrained encoder with an untrained classification head (smoke tests only). "
            "Without it they refuse to run without a checkpoint.",
        )
        parser.add_argument(
            "--overwrite",
            type=bool,
            default=False,
            help="fit, test and predict: replace the outputs of an earlier run at the same "
            "paths (a fit's model/ and checkpoints, a test's reports, a submission). Without it "
            "they stop, before any work, when one exists; a fit with --ckpt_path continues its "
            "run.",
        )

    def before_instantiate_classes(self) -> None:
        """Choose the logger when the config leaves it at Lightning's default, and the CPU
        precision (:func:`cpu_precision`).

        ``fit`` logs to a CSVLogger in ``<default_root_dir>/logs`` (a fixed path that DVC can
        track as plots). Evaluation runs report through TestReport/SubmissionWriter: a logger
        there would overwrite the training logs of the run they evaluate.
        """
        if self.subcommand is None:  # parse-only use, see preprocess_cli
            return
        config = self.config[self.subcommand]
        if self.subcommand in EVALUATIONS and not config.ckpt_path and not config.untrained:
            raise ConfigError(_no_checkpoint_message(self.subcommand, config["checkpoint.dirpath"]))
        trainer = config.trainer
        trainer.precision = cpu_precision(trainer.accelerator, trainer.precision)
        root = trainer.default_root_dir or "."
        if self.subcommand != "fit":
            trainer.logger = False
        elif trainer.logger in (None, True):
            trainer.logger = Namespace(
                class_path="lightning.pytorch.loggers.CSVLogger",
                init_args=Namespace(save_dir=root, name="logs", version=""),
            )
        else:
            loggers = trainer.logger if isinstance(trainer.logger, list) else [trainer.logger]
            for logger in loggers:
                path = getattr(logger, "class_path", "")
                if path.endswith(TrackedWandbLogger.__name__) and not logger.init_args.save_dir:
                    logger.init_args.save_dir = root

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        """Parse ``args``, always given explicitly (:func:`tweetcls.cli.main` takes them from
        ``sys.argv``), so Lightning's warning about ``args`` beside a non-empty ``sys.argv``
        would fire on every command and say nothing."""
        if isinstance(args, dict | Namespace):
            self.config = parser.parse_object(args)
        else:
            self.config = parser.parse_args(environment_args(list(args or [])))

    def instantiate_classes(self) -> None:
        """Build the model without pretrained weights when a checkpoint replaces them.

        ``test``/``validate``/``predict`` and a resumed ``fit`` with ``--ckpt_path`` load all
        the model's weights from the checkpoint, so the network is built from its config only
        (``model.pretrained_weights`` false, see
        :class:`tweetcls.models.classifier.TweetClassifier`).
        """
        if self.subcommand is not None:
            config = self.config[self.subcommand]
            if _checkpoint_will_load(config.get("ckpt_path"), config.get("checkpoint.dirpath")):
                config.model.pretrained_weights = False
        super().instantiate_classes()
        if self.subcommand in WRITERS:
            self._refuse_to_replace_outputs(self.subcommand, self.config[self.subcommand])

    def _refuse_to_replace_outputs(self, subcommand: str, config: Namespace) -> None:
        """Stop before the run when it would replace an earlier run's outputs (see
        :mod:`tweetcls.core.overwrite`); a fit resumed from a checkpoint continues its run."""
        if config.overwrite or (subcommand == "fit" and config.ckpt_path):
            return
        kinds, elsewhere = WRITERS[subcommand]
        root = self.trainer.default_root_dir
        outputs = [
            path
            for callback in self.trainer.callbacks
            if isinstance(callback, kinds)
            for path in callback.outputs(root)
        ]
        refuse_to_replace(subcommand, outputs, elsewhere)


def environment_args(args: list[str], environ: Mapping[str, str] = os.environ) -> list[str]:
    """``args`` with the subcommand's ``TWEETCLS_<SUBCOMMAND>__<KEY>`` variables as flags.

    ``TWEETCLS_FIT__TRAINER__MAX_EPOCHS=3`` is ``--trainer.max_epochs=3``, placed right after
    the subcommand, so that a ``--config`` file and a flag given on the command line win over
    it (as jsonargparse orders defaults, variables, configs and flags). jsonargparse's own
    ``default_env`` would do this but breaks the linked ``model.pretrained_model`` under
    subcommands (jsonargparse 4.53: "Expected a <class 'str'>. Got value: None").
    """
    if not args or args[0] not in (*EVALUATIONS, "fit"):
        return args
    prefix = f"{ENV_PREFIX}_{args[0].upper()}__"
    flags = [
        f"--{name.removeprefix(prefix).lower().replace('__', '.')}={value}"
        for name, value in sorted(environ.items())
        if name.startswith(prefix)
    ]
    return [args[0], *flags, *args[1:]]


def cpu_has_bf16_units(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU computes in bf16 natively (AVX-512 BF16 or AMX); ``False`` when its
    flags cannot be read (not Linux)."""
    return bool(cpu_flags(BF16_FLAGS, cpuinfo))


def cpu_precision(accelerator: Any, precision: Any) -> Any:
    """``precision``, except ``bf16-mixed`` on a CPU without bf16 units: ``32-true`` then.

    Such CPUs emulate bf16 about 20x slower than fp32, so a config written for GPUs
    (``configs/mpnet.yaml``) runs sensibly on CPU-only hosts without a flag; the change is
    printed. A CPU with bf16 units keeps ``bf16-mixed``.
    """
    on_cpu = accelerator == "cpu" or (
        accelerator in (None, "auto")
        and not torch.cuda.is_available()
        and not torch.backends.mps.is_available()
    )
    if str(precision) != "bf16-mixed" or not on_cpu or cpu_has_bf16_units():
        return precision
    print(
        "trainer.precision: bf16-mixed -> 32-true: this CPU has no bf16 units (no avx512_bf16 "
        "or amx_bf16 flag), where bf16 runs ~20x slower than fp32"
    )
    return "32-true"


def run_cli_class(
    cli_class: type[TweetCLI], args: ArgsType, run: bool = True, prog: str = PROG
) -> TweetCLI:
    """Build (and by default run) ``cli_class`` with tweetcls' model, data and defaults."""
    return cli_class(
        TweetClassifier,
        DisasterTweetsDataModule,
        seed_everything_default=42,
        save_config_callback=TrackedSaveConfigCallback,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"prog": prog, "description": DESCRIPTION},
        args=args,
        run=run,
    )


def main(args: list[str], prog: str = PROG) -> None:
    """Run a LightningCLI subcommand: ``args`` starts with fit, validate, test or predict."""
    quiet_libraries()
    run_cli_class(TweetCLI, args, prog=prog)
