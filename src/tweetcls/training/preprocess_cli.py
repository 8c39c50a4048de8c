"""``python -m tweetcls preprocess --config <experiment.yaml>``: the preprocess stage.

Parses the same experiment config as ``fit`` (so a bad value anywhere in it fails here first),
but builds only the DataModule and runs its preprocessing.
"""

from __future__ import annotations

from lightning.pytorch.cli import LightningArgumentParser

from tweetcls.data.datamodule import DisasterTweetsDataModule
from tweetcls.data.preprocess import preprocess
from tweetcls.training.cli import TweetCLI, run_cli_class


class PreprocessCLI(TweetCLI):
    """The experiment parser without subcommands; instantiates the DataModule only."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument(
            "--report_path", default="reports/data.json", help="Where the data report goes."
        )
        parser.add_argument(
            "--reviewed_feedback",
            type=str | None,
            default=None,
            help="Reviewed corrections to merge (off by default): a CSV with text and target "
            "(0/1), optionally id, keyword, location, e.g. rows of `tweetcls feedback`'s export "
            "a person has checked. A reviewed label overrides the raw label of the same cleaned "
            "text; texts new to the data join train; the split of the raw data is kept. "
            "Counted in the report's reviewed_feedback section.",
        )

    def instantiate_classes(self) -> None:
        self.datamodule = DisasterTweetsDataModule(**self.config.data.as_dict())


def main(args: list[str] | None = None, prog: str = "tweetcls preprocess") -> None:
    cli = run_cli_class(PreprocessCLI, args, run=False, prog=prog)
    data = cli.datamodule
    report = preprocess(  # DisasterTweetsDataModule.preprocess, with the reviewed file
        data.raw_dir,
        data.data_dir,
        val_fraction=data.val_fraction,
        split_seed=data.split_seed,
        report_path=cli.config.report_path,
        tokenizer=data.tokenizer,
        normaliser=data.normaliser,
        tokenizer_name=data.pretrained_model,
        reviewed_feedback=cli.config.reviewed_feedback,
    )
    split = {name: report[name]["rows"] for name in ("train", "val", "test")}
    print(f"preprocess: wrote {data.data_dir} {split} and {cli.config.report_path}")
    if "reviewed_feedback" in report:
        merged = report["reviewed_feedback"]
        corrected = merged["corrected_in_train"] + merged["corrected_in_val"]
        changed = merged["labels_changed_in_train"] + merged["labels_changed_in_val"]
        print(
            f"preprocess: merged {merged['rows']} reviewed rows of {merged['path']}: "
            f"{corrected} texts relabelled ({changed} changed), "
            f"{merged['new_texts_in_train']} new texts in train"
        )
