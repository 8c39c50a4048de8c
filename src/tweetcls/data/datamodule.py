"""``DisasterTweetsDataModule``: processed CSVs -> cached tokenized datasets -> batches."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import pandas as pd
import torch
from datasets import Dataset, concatenate_datasets, disable_progress_bars
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from sklearn.model_selection import StratifiedKFold
from torch.utils.data import DataLoader
from transformers import AutoTokenizer, DataCollatorWithPadding, PreTrainedTokenizerBase
from transformers.trainer_pt_utils import LengthGroupedSampler

from tweetcls.core.errors import ConfigError, DataValidationError
from tweetcls.core.inputs import NORMALISER_VERSION, build_segments, check_normaliser, encode
from tweetcls.core.pretrained import resolve_pretrained
from tweetcls.data.preprocess import (
    PROCESSED_FILES,
    check_val_fraction,
    preprocess,
    processed_normaliser,
    read_processed,
)

#: Bump when the tokenization below changes, to invalidate old caches.
_CACHE_VERSION = "1"


class DisasterTweetsDataModule(L.LightningDataModule):
    """Tokenized disaster tweets with dynamic padding and length-grouped training batches.

    Stages and the data they see: ``fit``/``validate`` train on ``train.csv`` and validate on
    ``val.csv``; ``test`` scores ``val.csv`` (Kaggle's test set has no labels); ``predict``
    labels ``test.csv``. With ``num_folds`` >= 2 (cross-validation), ``fit``/``validate`` use
    ``train.csv`` without fold ``fold`` for training and that fold for validation, so
    ``val.csv`` stays held out for ``test`` and for comparing fold models with their ensemble;
    with ``fold_pool: labelled`` the folds divide ``train.csv`` and ``val.csv`` together, so
    that out-of-fold predictions score every labelled tweet (nothing is held out then).

    Args:
        pretrained_model: Hub name or directory whose tokenizer is used. Linked from
            ``model.pretrained_model`` by the CLI, so it is never set twice.
        data_dir: Directory with the processed ``train.csv``, ``val.csv`` and ``test.csv``.
        raw_dir: Directory with the raw Kaggle ``train.csv`` and ``test.csv`` (preprocess input).
        normaliser: Version of the text normaliser (``tweetcls.core.inputs.NORMALISERS``):
            2 repairs mojibake and replaces links and ``@handles`` by one token each; 1 only
            decodes HTML entities. Preprocess applies it, the exported model records it and
            serving applies it again; ``data_dir`` must have been built with it.
        val_fraction: Share of the labelled tweets held out for validation, in [0.1, 0.5].
        split_seed: Seed of the stratified train/val split and of the folds (independent of the
            training seed).
        num_folds: Stratified folds for cross-validation; 1 turns it off.
        fold: Which fold (0-based) validates when ``num_folds`` >= 2.
        fold_pool: The tweets the folds divide: ``train`` (``train.csv``; ``val.csv`` stays
            held out) or ``labelled`` (``train.csv`` and ``val.csv``: out-of-fold predictions
            for all labelled tweets, the protocol recipes are compared by).
        train_share: Share of the training rows that ``fit`` trains on, in (0, 1]: a stratified
            subsample drawn with ``split_seed`` (nested: a smaller share is a subset of a larger
            one). Below 1 it measures a learning curve; validation rows are never subsampled.
        batch_size: Training batch size per device.
        eval_batch_size: Batch size for validation, test and predict; ``None`` uses
            ``2 * batch_size``.
        max_length: Longest token sequence kept; longer tweets are truncated.
        use_keyword: Encode the Kaggle keyword as a first segment before the text.
        use_location: Also put the free-text location into that first segment.
        group_by_length: Draw training batches from tweets of similar length (less padding).
        num_workers: DataLoader worker processes.
        cache_dir: Where tokenized datasets are cached; a second run reuses them.
        soft_targets: A teacher's probabilities for the ``train.csv`` tweets, for knowledge
            distillation (``model.distill_weight``): a CSV with ``id,probability`` columns as
            written by ``tweetcls soft-targets``. Training batches then carry ``soft_target``.
    """

    def __init__(
        self,
        pretrained_model: str,
        data_dir: str = "data/processed",
        raw_dir: str = "data/raw",
        normaliser: int = NORMALISER_VERSION,
        val_fraction: float = 0.1,
        split_seed: int = 42,
        num_folds: int = 1,
        fold: int = 0,
        fold_pool: Literal["train", "labelled"] = "train",
        train_share: float = 1.0,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        max_length: int = 128,
        use_keyword: bool = True,
        use_location: bool = False,
        group_by_length: bool = True,
        num_workers: int = 0,
        cache_dir: str = "data/cache",
        soft_targets: str | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"data.batch_size: must be >= 1, got {batch_size}")
        if eval_batch_size is not None and eval_batch_size < 1:
            raise ConfigError(f"data.eval_batch_size: must be >= 1, got {eval_batch_size}")
        if max_length < 8:
            raise ConfigError(f"data.max_length: must be >= 8, got {max_length}")
        check_val_fraction(val_fraction)
        check_normaliser(normaliser, "data.normaliser")
        if num_folds < 1:
            raise ConfigError(f"data.num_folds: must be >= 1 (1 = no folds), got {num_folds}")
        if not 0 <= fold < num_folds:
            raise ConfigError(f"data.fold: must lie in [0, {num_folds - 1}], got {fold}")
        if not 0 < train_share <= 1:
            raise ConfigError(f"data.train_share: must lie in (0, 1], got {train_share}")
        if num_workers < 0:
            raise ConfigError(f"data.num_workers: must be >= 0, got {num_workers}")
        self.save_hyperparameters()
        self.pretrained_model = pretrained_model
        self.data_dir = Path(data_dir)
        self.raw_dir = Path(raw_dir)
        self.normaliser = normaliser
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.num_folds = num_folds
        self.fold = fold
        self.fold_pool = fold_pool
        self.train_share = train_share
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or 2 * batch_size
        self.max_length = max_length
        self.use_keyword = use_keyword
        self.use_location = use_location
        self.group_by_length = group_by_length
        self.num_workers = num_workers
        self.cache_dir = Path(cache_dir)
        self.soft_targets = Path(soft_targets) if soft_targets else None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        #: tokenized data per role: ``train``, ``val``, ``test`` and ``predict``.
        self.datasets: dict[str, Dataset] = {}
        #: tweet ids per role, in dataset order.
        self.ids: dict[str, list[int]] = {}

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The tokenizer of ``pretrained_model``, loaded on first use."""
        if self._tokenizer is None:
            self._tokenizer = AutoTokenizer.from_pretrained(
                resolve_pretrained(self.pretrained_model)
            )
        return self._tokenizer

    def preprocess(self, report_path: str | Path | None = None) -> dict:
        """Build ``data_dir`` from ``raw_dir`` (the preprocess stage)."""
        return preprocess(
            self.raw_dir,
            self.data_dir,
            val_fraction=self.val_fraction,
            split_seed=self.split_seed,
            report_path=report_path,
            tokenizer=self.tokenizer,
            normaliser=self.normaliser,
            tokenizer_name=self.pretrained_model,
        )

    def prepare_data(self) -> None:
        """Preprocess if the processed files are missing (runs on one process only)."""
        if not all((self.data_dir / name).is_file() for name in PROCESSED_FILES):
            self.preprocess()

    def segments(
        self, texts: list[str], keywords: list[str], locations: list[str]
    ) -> tuple[list[str] | None, list[str]]:
        """(first segment or ``None``, texts) as fed to the tokenizer (see
        :func:`tweetcls.core.inputs.build_segments`).

        The exported ``tweetcls.json`` records ``use_keyword``/``use_location`` so that
        inference can rebuild the same input.
        """
        return build_segments(
            texts,
            keywords,
            locations,
            use_keyword=self.use_keyword,
            use_location=self.use_location,
        )

    def _tokenizer_fingerprint(self) -> str:
        """The tokenizer's full definition, without the truncation state that calls change."""
        spec = json.loads(self.tokenizer.backend_tokenizer.to_str())
        spec.pop("truncation", None)
        spec.pop("padding", None)
        return json.dumps(spec, sort_keys=True)

    def _cache_key(self, csv_path: Path) -> str:
        digest = hashlib.sha256()
        for part in (
            _CACHE_VERSION,
            hashlib.md5(csv_path.read_bytes()).hexdigest(),
            self._tokenizer_fingerprint(),
            repr((self.max_length, self.use_keyword, self.use_location)),
        ):
            digest.update(part.encode())
        return digest.hexdigest()[:16]

    def _tokenize_batch(self, batch: dict[str, list]) -> dict[str, list]:
        encoded = encode(
            self.tokenizer,
            batch["text"],
            batch["keyword"],
            batch["location"],
            use_keyword=self.use_keyword,
            use_location=self.use_location,
            max_length=self.max_length,
        )
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        if "target" in batch:
            encoded["labels"] = batch["target"]
        return encoded

    def load_split(self, split: str) -> Dataset:
        """Tokenize ``<data_dir>/<split>.csv``, or load it from the cache."""
        csv_path = self.data_dir / f"{split}.csv"
        built_with = processed_normaliser(self.data_dir)
        if built_with != self.normaliser:
            raise ConfigError(
                f"{self.data_dir}: built with text normaliser {built_with}, but "
                f"data.normaliser is {self.normaliser}: run `tweetcls preprocess` with this "
                "config (or set data.normaliser to match)"
            )
        frame = read_processed(self.data_dir, csv_path.name)
        key = self._cache_key(csv_path)
        cache_file = self.cache_dir / "tokenized" / f"{split}-{key}.arrow"
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        if cache_file.is_file():
            return Dataset.from_file(str(cache_file))
        columns = ["id", "keyword", "location", "text"] + (["target"] if "target" in frame else [])
        dataset = Dataset.from_pandas(frame[columns], preserve_index=False)
        disable_progress_bars()
        return dataset.map(
            self._tokenize_batch,
            batched=True,
            remove_columns=[c for c in columns if c != "id"],
            cache_file_name=str(cache_file),
            new_fingerprint=f"{split}-{key}",
        )

    def fold_indices(self, labels: list[int]) -> tuple[list[int], list[int]]:
        """(training rows, validation rows) of the fold pool for fold ``fold``."""
        folds = StratifiedKFold(self.num_folds, shuffle=True, random_state=self.split_seed)
        train_rows, val_rows = list(folds.split(labels, labels))[self.fold]
        return train_rows.tolist(), val_rows.tolist()

    def subsample(self, train: Dataset) -> Dataset:
        """The ``train_share`` of ``train``: stratified, nested across shares, seeded."""
        if self.train_share == 1:
            return train
        labels = np.asarray(train["labels"])
        # one random rank per row, drawn per class: the first share of each class is kept,
        # so each class keeps its proportion and a smaller share is a subset of a larger one
        ranks = np.random.default_rng(self.split_seed).random(len(labels))
        keep: list[int] = []
        for label in np.unique(labels):
            rows = np.flatnonzero(labels == label)
            count = max(1, round(self.train_share * len(rows)))
            keep.extend(rows[np.argsort(ranks[rows], kind="stable")[:count]].tolist())
        return train.select(sorted(keep))

    def _set(self, role: str, dataset: Dataset) -> None:
        self.datasets[role] = dataset
        self.ids[role] = list(dataset["id"])

    def with_soft_targets(self, train: Dataset) -> Dataset:
        """``train`` with a ``soft_target`` column read from ``soft_targets``."""
        path = self.soft_targets
        if not path.is_file():
            raise DataValidationError(
                f"{path}: soft targets not found (data.soft_targets; write them with "
                "`tweetcls soft-targets`)"
            )
        table = pd.read_csv(path)
        if not {"id", "probability"} <= set(table.columns):
            raise DataValidationError(f"{path}: expected columns id,probability")
        table = table.drop_duplicates("id").set_index("id")["probability"]
        ids = pd.Index(train["id"])
        missing = ~ids.isin(table.index)
        if missing.any():
            raise DataValidationError(
                f"{path}: no probability for {int(missing.sum())} of {len(ids)} train.csv "
                f"tweets (e.g. id {ids[missing][0]}); regenerate them for this data"
            )
        values = table.loc[ids].to_numpy(dtype="float32")
        if not ((values >= 0) & (values <= 1)).all():
            raise DataValidationError(f"{path}: probabilities must lie in [0, 1]")
        return train.add_column("soft_target", values.tolist())

    def setup(self, stage: str) -> None:
        if stage in ("fit", "validate") and "val" not in self.datasets:
            train = self.load_split("train")
            if self.num_folds > 1 and self.fold_pool == "labelled":
                train = concatenate_datasets([train, self.load_split("val")])
            if self.soft_targets is not None:
                train = self.with_soft_targets(train)
            if self.num_folds == 1:
                self._set("train", self.subsample(train))
                self._set("val", self.load_split("val"))
            else:
                train_rows, val_rows = self.fold_indices(list(train["labels"]))
                self._set("train", self.subsample(train.select(train_rows)))
                self._set("val", train.select(val_rows))
        elif stage == "test" and "test" not in self.datasets:
            self._set("test", self.load_split("val"))
        elif stage == "predict" and "predict" not in self.datasets:
            self._set("predict", self.load_split("test"))

    @property
    def collator(self) -> DataCollatorWithPadding:
        """Pads each batch to its longest member (never to ``max_length``)."""
        return DataCollatorWithPadding(self.tokenizer, return_tensors="pt")

    def _loader(self, role: str, batch_size: int, train: bool = False) -> DataLoader:
        dataset = self.datasets[role]
        sampler = None
        if not train:
            # longest first: batches of similar length pad little (the profile of a MiniLM
            # epoch showed unsorted validation batches costing 1.4x the per-tweet time of
            # training's forward pass). ``ids[role]`` keeps file order; outputs carry ids.
            lengths = list(dataset["length"])
            order = sorted(range(len(dataset)), key=lengths.__getitem__, reverse=True)
            dataset = dataset.select(order)
        if train and self.group_by_length:
            # an explicit generator: every DDP rank must draw the same order to shard it
            seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
            sampler = LengthGroupedSampler(
                batch_size,
                lengths=list(dataset["length"]),
                generator=torch.Generator().manual_seed(seed),
            )
        elif not train and self.trainer is not None and self.trainer.world_size > 1:
            # Lightning's default DistributedSampler pads ranks with repeated samples, which
            # would count them twice in the gathered validation metrics
            sampler = UnrepeatedDistributedSampler(
                dataset, shuffle=False, **self.trainer.distributed_sampler_kwargs
            )
        return DataLoader(
            dataset.remove_columns("length"),
            batch_size=batch_size,
            shuffle=train and sampler is None,
            sampler=sampler,
            collate_fn=self.collator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def eval_loader(self, role: str) -> DataLoader:
        """Batches of role ``train``, ``val``, ``test`` or ``predict``, longest tweets first.

        Not in file order: each batch carries its tweets' ``id``s, and ``ids[role]`` holds the
        file order.
        """
        return self._loader(role, self.eval_batch_size)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        return self.eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        """The held-out ``val.csv``: Kaggle's test set has no labels."""
        return self.eval_loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self.eval_loader("predict")
