"""``TweetClassifier``: a Hugging Face sequence classifier as a LightningModule."""

from __future__ import annotations

import os
import re

import lightning as L
import torch
from torch import nn
from torchmetrics import CatMetric, MaxMetric, MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC, BinaryF1Score
from torchmetrics.functional.classification import (
    binary_accuracy,
    binary_auroc,
    binary_f1_score,
    binary_precision,
    binary_recall,
)
from transformers import AutoConfig, get_linear_schedule_with_warmup

from tweetcls.core.errors import ConfigError
from tweetcls.core.labels import ID2LABEL, LABEL2ID
from tweetcls.core.pretrained import resolve_pretrained
from tweetcls.inference.networks import Pooling, build_network
from tweetcls.models.threshold import best_f1_threshold

#: An encoder layer's index in a parameter name (``bert.encoder.layer.3.attention...``).
_LAYER = re.compile(r"\.layers?\.(\d+)\.")


class TweetClassifier(L.LightningModule):
    """Fine-tunes a Hugging Face encoder with a classification head: disaster tweets (1) vs
    others (0).

    ``test``, ``predict`` and the exported model predict a disaster above
    ``decision_threshold`` (0.5), a setting like any other, kept in the checkpoint's
    hyperparameters (LightningCLI's ``--ckpt_path`` restores them). Validation does not move it: the
    validation split already selects the checkpoint, and a threshold tuned on the same 750
    tweets is optimistic there and trades recall for precision on new data. A tuned threshold
    comes from data that selected nothing (out-of-fold predictions, see ``tweetcls kfold`` and
    ``tweetcls ensemble``) and is kept only when it beats 0.5 beyond bootstrap noise.

    Logged per stage (``train/``, ``val/``, ``test/``): ``f1`` and ``accuracy``, ``auroc``; on
    validation and test also ``f1_tuned`` and ``threshold_tuned``, the in-sample best cut, a
    diagnostic only (optimistic by construction).

    Args:
        pretrained_model: Hugging Face Hub name or local directory of the encoder, e.g.
            ``roberta-base`` or ``sentence-transformers/all-MiniLM-L6-v2``.
        learning_rate: Peak AdamW learning rate, reached after warm-up.
        weight_decay: AdamW weight decay; biases and normalisation weights are exempt.
        warmup_ratio: Fraction of all optimizer steps spent warming up linearly from 0; the
            rate then decays linearly to 0 at the last step.
        adam_epsilon: AdamW epsilon.
        classifier_dropout: Dropout before the classification head; ``None`` keeps the
            pretrained config's value.
        decision_threshold: Probability above which a tweet is predicted a disaster in
            ``test``, ``predict`` and the exported model.
        distill_weight: Knowledge distillation: the share of the training loss that comes
            from a teacher's soft targets (``data.soft_targets``); the loss is
            ``(1 - w) * CE(labels) + w * T^2 * KL(teacher_T || student_T)``. 0 trains on the
            labels alone.
        distill_temperature: ``T`` above: both the teacher's and the student's two-class
            distributions are softened by dividing their logits by it.
        layer_decay: Layer-wise learning-rate decay: the top encoder layer trains at
            ``learning_rate``, each layer below at ``layer_decay`` times the rate of the layer
            above, the embeddings one step below the first layer. 1 trains every layer alike.
        head_learning_rate: Learning rate of the classification head (everything the encoder's
            last layer feeds: the pooler and the classifier); ``None`` uses ``learning_rate``.
        label_smoothing: Label smoothing of the training cross-entropy
            (``torch.nn.functional.cross_entropy``); 0 trains on hard labels.
        pooling: The head: ``cls`` is the Hugging Face head (the first token), ``mean`` a
            linear layer over the mean of the last hidden states (the pooling the
            sentence-transformers encoders were trained with;
            :class:`tweetcls.inference.networks.MeanPoolingClassifier`).
        encoder_layers: Structured pruning by whole layers: keep the encoder's first
            ``encoder_layers`` layers and drop the ones above before fine-tuning (the top
            layers, which fine-tuning changes most; Sajjad et al., 2023); the saved config
            has the smaller depth, so export, int8 and every backend see a smaller model.
            ``None`` keeps every layer.
        pretrained_weights: Load the encoder's pretrained weights. ``False`` builds the network
            from the pretrained config alone (randomly initialised) for a checkpoint to fill
            in: ``validate``, ``test``, ``predict`` and a resumed ``fit`` set it themselves when
            ``--ckpt_path`` will load (:class:`tweetcls.training.cli.TweetCLI`), as
            ``load_from_checkpoint(..., pretrained_weights=False)`` may. Not a hyperparameter
            (not saved in checkpoints).
    """

    def __init__(
        self,
        pretrained_model: str,
        learning_rate: float = 3e-5,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        adam_epsilon: float = 1e-8,
        classifier_dropout: float | None = None,
        decision_threshold: float = 0.5,
        distill_weight: float = 0.0,
        distill_temperature: float = 2.0,
        layer_decay: float = 1.0,
        head_learning_rate: float | None = None,
        label_smoothing: float = 0.0,
        pooling: Pooling = "cls",
        encoder_layers: int | None = None,
        pretrained_weights: bool = True,
    ) -> None:
        super().__init__()
        if learning_rate <= 0:
            raise ConfigError(f"model.learning_rate: must be > 0, got {learning_rate}")
        if weight_decay < 0:
            raise ConfigError(f"model.weight_decay: must be >= 0, got {weight_decay}")
        if not 0 <= warmup_ratio < 1:
            raise ConfigError(f"model.warmup_ratio: must lie in [0, 1), got {warmup_ratio}")
        if classifier_dropout is not None and not 0 <= classifier_dropout < 1:
            raise ConfigError(
                f"model.classifier_dropout: must lie in [0, 1), got {classifier_dropout}"
            )
        if not 0 < decision_threshold < 1:
            raise ConfigError(
                f"model.decision_threshold: must lie in (0, 1), got {decision_threshold}"
            )
        if not 0 <= distill_weight <= 1:
            raise ConfigError(f"model.distill_weight: must lie in [0, 1], got {distill_weight}")
        if distill_temperature <= 0:
            raise ConfigError(f"model.distill_temperature: must be > 0, got {distill_temperature}")
        if not 0 < layer_decay <= 1:
            raise ConfigError(f"model.layer_decay: must lie in (0, 1], got {layer_decay}")
        if head_learning_rate is not None and head_learning_rate <= 0:
            raise ConfigError(f"model.head_learning_rate: must be > 0, got {head_learning_rate}")
        if not 0 <= label_smoothing < 1:
            raise ConfigError(f"model.label_smoothing: must lie in [0, 1), got {label_smoothing}")
        self.save_hyperparameters(ignore=["pretrained_weights"])
        source = resolve_pretrained(pretrained_model)
        config = AutoConfig.from_pretrained(
            source, num_labels=len(ID2LABEL), id2label=ID2LABEL, label2id=LABEL2ID
        )
        if classifier_dropout is not None:
            if pooling == "cls" and not hasattr(config, "classifier_dropout"):
                raise ConfigError(
                    f"model.classifier_dropout: {config.model_type} models have no separate "
                    "classifier dropout (their head uses hidden_dropout_prob); leave it unset"
                )
            config.classifier_dropout = classifier_dropout
        if encoder_layers is not None:
            if not 1 <= encoder_layers <= config.num_hidden_layers:
                raise ConfigError(
                    f"model.encoder_layers: must lie in [1, {config.num_hidden_layers}] "
                    f"({pretrained_model} has {config.num_hidden_layers}), got {encoder_layers}"
                )
            config.num_hidden_layers = encoder_layers
        network = build_network(config, str(source) if pretrained_weights else None, pooling)
        self.model = network.train()  # from_pretrained returns eval mode; Lightning keeps modes
        # configuration (from the hyperparameters), not state
        self.register_buffer("threshold", torch.tensor(float(decision_threshold)), persistent=False)
        self.train_metrics = MetricCollection(
            {"f1": BinaryF1Score(), "accuracy": BinaryAccuracy(), "auroc": BinaryAUROC()},
            prefix="train/",
        )
        self.eval_probs = nn.ModuleDict({s: CatMetric() for s in ("val", "test")})
        self.eval_labels = nn.ModuleDict({s: CatMetric() for s in ("val", "test")})
        # integer state: exact for any id; gathered across ranks like probs and labels
        self.test_ids = CatMetric(nan_strategy="disable").set_dtype(torch.long)
        self.val_f1_best = MaxMetric()
        #: ``probs``, ``labels`` and tweet ``ids`` of the last ``test`` run, aligned, for
        #: reports (under DDP they are gathered in rank order, not in file order).
        self.test_results: dict[str, torch.Tensor] = {}

    def on_fit_start(self) -> None:
        """Under DDP, give each rank its own dropout stream (seed + rank).

        Initial weights are identical anyway (DDP broadcasts rank 0's), and the training
        sampler has its own generator, so ranks still agree on the data order.
        """
        if self.trainer.world_size > 1:
            seed = int(os.environ.get("PL_GLOBAL_SEED", 0)) + self.global_rank
            torch.manual_seed(seed)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits of shape (batch, 2)."""
        inputs = {k: v for k, v in batch.items() if k not in ("labels", "id", "soft_target")}
        return self.model(**inputs).logits

    def _probs(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float().softmax(-1)[:, 1]

    def distillation_loss(self, logits: torch.Tensor, soft_target: torch.Tensor) -> torch.Tensor:
        """``T^2 * KL(teacher_T || student_T)`` per batch, both as Bernoulli distributions.

        ``soft_target`` holds the teacher's probabilities; softening divides its logit (and
        the student's logit margin) by ``T``. The ``T^2`` factor keeps the gradient scale
        independent of ``T`` (Hinton et al., 2015).
        """
        temperature = self.hparams.distill_temperature
        teacher = torch.special.logit(soft_target.float().clamp(1e-6, 1 - 1e-6))
        teacher_soft = torch.sigmoid(teacher / temperature)
        margin = (logits[:, 1] - logits[:, 0]).float() / temperature
        cross_entropy = nn.functional.binary_cross_entropy_with_logits(
            margin, teacher_soft, reduction="none"
        )
        entropy = nn.functional.binary_cross_entropy(teacher_soft, teacher_soft, reduction="none")
        return temperature**2 * (cross_entropy - entropy).mean()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(batch)
        loss = nn.functional.cross_entropy(
            logits.float(), batch["labels"], label_smoothing=self.hparams.label_smoothing
        )
        weight = self.hparams.distill_weight
        if weight > 0:
            if "soft_target" not in batch:
                raise ConfigError(
                    "model.distill_weight > 0 needs a teacher: set data.soft_targets to a CSV "
                    "written by `tweetcls soft-targets`"
                )
            distill = self.distillation_loss(logits, batch["soft_target"])
            self.log("train/distill_loss", distill, batch_size=len(logits))
            self.log("train/label_loss", loss, batch_size=len(logits))
            loss = (1 - weight) * loss + weight * distill
        self.train_metrics.update(self._probs(logits), batch["labels"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(logits))
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True)
        return loss

    def _eval_step(self, stage: str, batch: dict[str, torch.Tensor]) -> None:
        logits = self(batch)
        loss = nn.functional.cross_entropy(logits.float(), batch["labels"])
        self.log(f"{stage}/loss", loss, batch_size=len(logits), sync_dist=True)
        self.eval_probs[stage].update(self._probs(logits))
        self.eval_labels[stage].update(batch["labels"])

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step("test", batch)
        self.test_ids.update(batch["id"])

    def _epoch_scores(self, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        probs = self.eval_probs[stage].compute().flatten()
        labels = self.eval_labels[stage].compute().flatten().long()
        self.eval_probs[stage].reset()
        self.eval_labels[stage].reset()
        return probs, labels

    def on_validation_epoch_end(self) -> None:
        probs, labels = self._epoch_scores("val")
        f1 = binary_f1_score(probs, labels, threshold=float(self.threshold))
        if not self.trainer.sanity_checking:
            threshold_tuned, f1_tuned = best_f1_threshold(probs, labels)
            self.val_f1_best.update(f1)
            self.log_dict(
                {
                    "val/f1_tuned": f1_tuned,
                    "val/threshold_tuned": threshold_tuned,
                    "val/f1_best": self.val_f1_best.compute(),
                },
                sync_dist=True,  # equal on every rank (computed from gathered data)
            )
        self.log_dict(
            {
                "val/f1": f1,
                "val/accuracy": binary_accuracy(probs, labels, threshold=float(self.threshold)),
                "val/auroc": binary_auroc(probs, labels),
            },
            prog_bar=True,
            sync_dist=True,
        )

    def on_test_epoch_end(self) -> None:
        probs, labels = self._epoch_scores("test")
        ids = self.test_ids.compute().flatten()
        self.test_ids.reset()
        threshold = float(self.threshold)
        threshold_tuned, f1_tuned = best_f1_threshold(probs, labels)
        self.test_results = {"probs": probs.cpu(), "labels": labels.cpu(), "ids": ids.cpu()}
        self.log_dict(
            {
                "test/f1": binary_f1_score(probs, labels, threshold=threshold),
                "test/precision": binary_precision(probs, labels, threshold=threshold),
                "test/recall": binary_recall(probs, labels, threshold=threshold),
                "test/accuracy": binary_accuracy(probs, labels, threshold=threshold),
                "test/auroc": binary_auroc(probs, labels),
                "test/f1_at_0.5": binary_f1_score(probs, labels),
                "test/threshold": threshold,
                "test/f1_tuned": f1_tuned,
                "test/threshold_tuned": threshold_tuned,
            },
            sync_dist=True,
        )

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict:
        probs = self._probs(self(batch))
        return {"id": batch["id"], "probability": probs, "target": (probs >= self.threshold).long()}

    def layer_depths(self) -> dict[str, int]:
        """Depth of every parameter: 0 embeddings, ``i + 1`` encoder layer ``i``, and
        ``num_hidden_layers + 1`` the head (the pooler and everything outside the encoder)."""
        prefix = f"model.{self.model.base_model_prefix}."
        layers = self.model.config.num_hidden_layers
        depths = {}
        for name, _ in self.named_parameters():
            match = _LAYER.search(name)
            if not name.startswith(prefix) or ".pooler." in name:
                depths[name] = layers + 1
            elif match:
                depths[name] = int(match.group(1)) + 1
            else:
                depths[name] = 0
        return depths

    def param_groups(self) -> list[dict]:
        """AdamW parameter groups: a learning rate per depth (:meth:`layer_depths`, scaled by
        ``layer_decay``; the head at ``head_learning_rate``), and no weight decay on biases
        and normalisation weights."""
        hparams = self.hparams
        top = self.model.config.num_hidden_layers
        head_lr = hparams.head_learning_rate or hparams.learning_rate
        groups: dict[tuple[float, float], list[nn.Parameter]] = {}
        depths = self.layer_depths()
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            depth = depths[name]
            lr = (
                head_lr
                if depth > top
                else hparams.learning_rate * hparams.layer_decay ** (top - depth)
            )
            decay = hparams.weight_decay if param.ndim >= 2 else 0.0
            groups.setdefault((lr, decay), []).append(param)
        return [
            {"params": params, "lr": lr, "weight_decay": decay}
            for (lr, decay), params in groups.items()
        ]

    def optimizer_and_scheduler(self, total_steps: int):
        """AdamW over :meth:`param_groups`, linear warm-up then decay to 0 in every group."""
        optimizer = torch.optim.AdamW(
            self.param_groups(), lr=self.hparams.learning_rate, eps=self.hparams.adam_epsilon
        )
        scheduler = get_linear_schedule_with_warmup(
            optimizer, int(self.hparams.warmup_ratio * total_steps), total_steps
        )
        return optimizer, scheduler

    def configure_optimizers(self):
        """The schedule spans ``trainer.estimated_stepping_batches`` and steps every step."""
        optimizer, scheduler = self.optimizer_and_scheduler(
            int(self.trainer.estimated_stepping_batches)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
