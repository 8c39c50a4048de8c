"""``DisasterTweetsDataModule``: processed CSVs -> cached tokenized datasets -> batches."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lightning as L
from datasets import Dataset, disable_progress_bars
from torch.utils.data import DataLoader
from transformers import AutoTokenizer, DataCollatorWithPadding, PreTrainedTokenizerBase
from transformers.trainer_pt_utils import LengthGroupedSampler

from tweetcls.errors import ConfigError
from tweetcls.preprocess import (
    PROCESSED_FILES,
    check_val_fraction,
    preprocess,
    read_processed,
)
from tweetcls.pretrained import resolve_pretrained

#: Bump when the tokenization below changes, to invalidate old caches.
_CACHE_VERSION = "1"


class DisasterTweetsDataModule(L.LightningDataModule):
    """Tokenized disaster tweets with dynamic padding and length-grouped training batches.

    Args:
        pretrained_model: Hub name or directory whose tokenizer is used. Linked from
            ``model.pretrained_model`` by the CLI, so it is never set twice.
        data_dir: Directory with the processed ``train.csv``, ``val.csv`` and ``test.csv``.
        raw_dir: Directory with the raw Kaggle ``train.csv`` and ``test.csv`` (preprocess input).
        val_fraction: Share of the labelled tweets held out for validation, in [0.1, 0.5].
        split_seed: Seed of the stratified train/val split (independent of the training seed).
        batch_size: Training batch size per device.
        eval_batch_size: Batch size for validation, test and predict; ``None`` uses
            ``2 * batch_size``.
        max_length: Longest token sequence kept; longer tweets are truncated.
        use_keyword: Encode the Kaggle keyword as a first segment before the text.
        use_location: Also put the free-text location into that first segment.
        group_by_length: Draw training batches from tweets of similar length (less padding).
        num_workers: DataLoader worker processes.
        cache_dir: Where tokenized datasets are cached; a second run reuses them.
    """

    def __init__(
        self,
        pretrained_model: str,
        data_dir: str = "data/processed",
        raw_dir: str = "data/raw",
        val_fraction: float = 0.1,
        split_seed: int = 42,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        max_length: int = 128,
        use_keyword: bool = True,
        use_location: bool = False,
        group_by_length: bool = True,
        num_workers: int = 0,
        cache_dir: str = "data/cache",
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"data.batch_size: must be >= 1, got {batch_size}")
        if eval_batch_size is not None and eval_batch_size < 1:
            raise ConfigError(f"data.eval_batch_size: must be >= 1, got {eval_batch_size}")
        if max_length < 8:
            raise ConfigError(f"data.max_length: must be >= 8, got {max_length}")
        check_val_fraction(val_fraction)
        if num_workers < 0:
            raise ConfigError(f"data.num_workers: must be >= 0, got {num_workers}")
        self.save_hyperparameters()
        self.pretrained_model = pretrained_model
        self.data_dir = Path(data_dir)
        self.raw_dir = Path(raw_dir)
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or 2 * batch_size
        self.max_length = max_length
        self.use_keyword = use_keyword
        self.use_location = use_location
        self.group_by_length = group_by_length
        self.num_workers = num_workers
        self.cache_dir = Path(cache_dir)
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self.datasets: dict[str, Dataset] = {}
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
        )

    def prepare_data(self) -> None:
        """Preprocess if the processed files are missing (runs on one process only)."""
        if not all((self.data_dir / name).is_file() for name in PROCESSED_FILES):
            self.preprocess()

    def segments(
        self, texts: list[str], keywords: list[str], locations: list[str]
    ) -> tuple[list[str] | None, list[str]]:
        """(first segment or ``None``, texts) as fed to the tokenizer.

        The exported ``tweetcls.json`` records ``use_keyword``/``use_location`` so that
        inference can rebuild the same input.
        """
        if not (self.use_keyword or self.use_location):
            return None, list(texts)
        parts = []
        for keyword, location in zip(keywords, locations, strict=True):
            fields = [keyword] if self.use_keyword else []
            fields += [location] if self.use_location else []
            parts.append(" | ".join(field for field in fields if field))
        return parts, list(texts)

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
        first, texts = self.segments(batch["text"], batch["keyword"], batch["location"])
        args = (texts,) if first is None else (first, texts)
        encoded = self.tokenizer(
            *args, truncation="only_second" if first else True, max_length=self.max_length
        )
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        if "target" in batch:
            encoded["labels"] = batch["target"]
        return encoded

    def load_split(self, split: str) -> Dataset:
        """Tokenize ``<data_dir>/<split>.csv``, or load it from the cache."""
        csv_path = self.data_dir / f"{split}.csv"
        frame = read_processed(self.data_dir, csv_path.name)
        key = self._cache_key(csv_path)
        cache_file = self.cache_dir / "tokenized" / f"{split}-{key}.arrow"
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        self.ids[split] = frame["id"].tolist()
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

    def setup(self, stage: str) -> None:
        splits = {"fit": ("train", "val"), "validate": ("val",), "test": ("val",)}.get(
            stage, ("test",)
        )
        for split in splits:
            if split not in self.datasets:
                self.datasets[split] = self.load_split(split)

    @property
    def collator(self) -> DataCollatorWithPadding:
        """Pads each batch to its longest member (never to ``max_length``)."""
        return DataCollatorWithPadding(self.tokenizer, return_tensors="pt")

    def _loader(self, split: str, batch_size: int, train: bool = False) -> DataLoader:
        dataset = self.datasets[split]
        sampler = None
        if train and self.group_by_length:
            sampler = LengthGroupedSampler(batch_size, lengths=dataset["length"])
        return DataLoader(
            dataset.remove_columns("length"),
            batch_size=batch_size,
            shuffle=train and sampler is None,
            sampler=sampler,
            collate_fn=self.collator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        """The test stage scores the held-out validation split: Kaggle's test set has no labels."""
        return self._loader("val", self.eval_batch_size)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size)
