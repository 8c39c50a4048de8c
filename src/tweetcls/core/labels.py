"""The two classes: index 0 is "not_disaster", index 1 is "disaster" (Kaggle's ``target``)."""

from __future__ import annotations

#: Class names by index; the model's ``id2label``, the API's labels and the figures use these.
LABEL_NAMES: tuple[str, str] = ("not_disaster", "disaster")
#: ``id2label`` / ``label2id`` of the Hugging Face model config.
ID2LABEL: dict[int, str] = dict(enumerate(LABEL_NAMES))
LABEL2ID: dict[str, int] = {name: index for index, name in ID2LABEL.items()}
