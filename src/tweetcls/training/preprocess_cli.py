"""``python -m tweetcls preprocess --config <experiment.yaml>``: the preprocess stage.

Parses the same experiment config as ``fit`` (so a bad value anywhere in it fails here first),
but builds only the DataModule and runs its preprocessing.
"""

from __future__ import annotations

from lightning.pytorch.cli import LightningArgumentParser

from tweetcls.data.datamodule import DisasterTweetsDataModule
from tweetcls.training.cli import TweetCLI, run_cli_class


class PreprocessCLI(TweetCLI):
    """The experiment parser without subcommands; instantiates the DataModule only."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument(
            "--report_path", default="reports/data.json", help="Where the data report goes."
        )

    def instantiate_classes(self) -> None:
        self.datamodule = DisasterTweetsDataModule(**self.config.data.as_dict())


def main(args: list[str] | None = None, prog: str = "tweetcls preprocess") -> None:
    cli = run_cli_class(PreprocessCLI, args, run=False, prog=prog)
    report = cli.datamodule.preprocess(report_path=cli.config.report_path)
    split = {name: report[name]["rows"] for name in ("train", "val", "test")}
    print(f"preprocess: wrote {cli.datamodule.data_dir} {split} and {cli.config.report_path}")
