"""``tweetcls fit|validate|test|predict``: LightningCLI with tweetcls' model and data.

Every command reads the same experiment YAML (``preprocess`` too, see
:mod:`tweetcls.training.preprocess_cli`). The model's ``pretrained_model`` is linked to
the DataModule's tokenizer, and run outputs (checkpoints, exported model) are placed under
``trainer.default_root_dir``.
"""

from __future__ import annotations

from pathlib import Path

from jsonargparse import Namespace
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI

from tweetcls.cli import PROG
from tweetcls.core.logs import quiet_libraries
from tweetcls.data.datamodule import DisasterTweetsDataModule
from tweetcls.models.classifier import TweetClassifier
from tweetcls.training.callbacks import ExportBestModel, SubmissionWriter, TestReport
from tweetcls.training.tracking import TrackedSaveConfigCallback, TrackedWandbLogger


def _under_root(leaf: str):
    def compute(root: str | Path | None) -> str:
        return str(Path(root or ".") / leaf)

    return compute


DESCRIPTION = (
    "Fine-tune a Hugging Face encoder to tell disaster tweets from others, and evaluate it. "
    "`tweetcls --help` lists the other commands."
)


class TweetCLI(LightningCLI):
    """LightningCLI with tweetcls' linked arguments and artifact callbacks."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("model.pretrained_model", "data.pretrained_model")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
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

    def before_instantiate_classes(self) -> None:
        """Choose the logger when the config leaves it at Lightning's default.

        ``fit`` logs to a CSVLogger in ``<default_root_dir>/logs`` (a fixed path that DVC can
        track as plots). Evaluation runs report through TestReport/SubmissionWriter: a logger
        there would overwrite the training logs of the run they evaluate.
        """
        if self.subcommand is None:  # parse-only use, see preprocess_cli
            return
        trainer = self.config[self.subcommand].trainer
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
