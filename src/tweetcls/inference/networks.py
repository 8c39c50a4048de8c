"""The classifier networks a model directory holds: a Hugging Face head, or mean pooling.

``pooling: cls`` is ``AutoModelForSequenceClassification``: the head classifies the first
token (through BERT's pooler, RoBERTa's and MPNet's dense layer). ``pooling: mean`` averages
the encoder's last hidden states over the real tokens, as the sentence-transformers encoders
were trained to be used, then dropout and one linear layer. A mean-pooling model directory is
a Hugging Face one too: ``config.json`` (with ``tweetcls_pooling: mean``) and
``model.safetensors`` whose keys are the encoder's under its usual prefix (``bert.``, ...)
plus ``classifier.``. :func:`load_network` reads both kinds; training, the ONNX exporter and
the ``pytorch`` backend all build their network here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_model, save_model
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification
from transformers.modeling_outputs import SequenceClassifierOutput

#: ``config.json`` key that names the head of a mean-pooling model.
POOLING_KEY = "tweetcls_pooling"
Pooling = Literal["cls", "mean"]


def _encoder(config: Any, source: str | None) -> nn.Module:
    """The bare encoder, without a pooler where the architecture has one to drop."""
    build = AutoModel.from_config if source is None else AutoModel.from_pretrained
    args = (config,) if source is None else (source,)
    kwargs = {} if source is None else {"config": config}
    try:
        return build(*args, **kwargs, add_pooling_layer=False)
    except TypeError:  # an encoder without a pooler to leave out
        return build(*args, **kwargs)


class MeanPoolingClassifier(nn.Module):
    """Mean of the encoder's last hidden states over real tokens -> dropout -> linear.

    Args:
        config: The encoder's Hugging Face config (``num_labels`` and, if set,
            ``classifier_dropout`` apply; else ``hidden_dropout_prob``).
        source: Pretrained weights of the encoder (Hub name or directory); ``None`` builds it
            from ``config`` with random weights (a checkpoint fills them in next).
    """

    def __init__(self, config: Any, source: str | None = None) -> None:
        super().__init__()
        config.update({POOLING_KEY: "mean"})
        self.config = config
        encoder = _encoder(config, source)
        #: the encoder's attribute name and weight-key prefix (``bert``, ``roberta``, ...)
        self.base_model_prefix = encoder.base_model_prefix
        setattr(self, self.base_model_prefix, encoder)
        dropout = getattr(config, "classifier_dropout", None)
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        nn.init.normal_(self.classifier.weight, std=config.initializer_range)
        nn.init.zeros_(self.classifier.bias)

    @property
    def encoder(self) -> nn.Module:
        return getattr(self, self.base_model_prefix)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> SequenceClassifierOutput:
        """Logits of shape (batch, ``num_labels``)."""
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra)[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return SequenceClassifierOutput(logits=self.classifier(self.dropout(pooled)))

    def save_pretrained(self, directory: str | Path) -> None:
        """``config.json`` and ``model.safetensors``, as Hugging Face models save them."""
        self.config.save_pretrained(str(directory))
        save_model(self, str(Path(directory) / "model.safetensors"))


def build_network(config: Any, source: str | None, pooling: Pooling = "cls") -> nn.Module:
    """A classifier over the encoder of ``config``: pretrained from ``source``, or random.

    Args:
        config: The Hugging Face config with ``num_labels`` (and labels) set.
        source: Where the pretrained weights are; ``None`` for random weights.
        pooling: ``cls`` (the Hugging Face head) or ``mean`` (:class:`MeanPoolingClassifier`).
    """
    if pooling == "mean":
        return MeanPoolingClassifier(config, source)
    if source is None:
        return AutoModelForSequenceClassification.from_config(config)
    return AutoModelForSequenceClassification.from_pretrained(source, config=config)


def load_network(model_dir: str | Path) -> nn.Module:
    """The network of a model directory written by ``fit`` (either head), in eval mode."""
    config = AutoConfig.from_pretrained(str(model_dir))
    if getattr(config, POOLING_KEY, "cls") != "mean":
        return AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    network = MeanPoolingClassifier(config)
    load_model(network, str(Path(model_dir) / "model.safetensors"))
    return network.eval()
