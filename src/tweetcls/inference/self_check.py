"""The bundle's self-check: a few tweets whose probabilities export recorded, scored again at start.

8-bit dot products saturate on CPUs without VNNI (an MPNet int8 model scored F1 0.34 instead of
0.80 on an AVX2-only host), and a service may run on another CPU than the one export checked its
bundle on. So export records, in ``serving.json``, :data:`SELF_CHECK_TWEETS` validation tweets
and each backend's probabilities for them, scored as one batch; the service scores the same
batch with its backend before it serves, and :func:`self_check_difference` says how far the two
are apart (see :func:`tweetcls.serving.loading.load_model` for what it does about it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from tweetcls.inference.base import Backend, frame_inputs

#: Key of the self-check in ``serving.json``.
SELF_CHECK_KEY = "self_check"
#: Validation tweets the self-check scores (the first rows of ``val.csv``).
SELF_CHECK_TWEETS = 32


def record_self_check(backends: Mapping[str, Backend], val: pd.DataFrame) -> dict[str, Any]:
    """The self-check of ``serving.json``: the tweets, and each backend's probabilities."""
    texts, keywords = frame_inputs(val.head(SELF_CHECK_TWEETS))
    return {
        "texts": texts,
        "keywords": keywords,
        "probabilities": {
            kind: [round(float(p), 6) for p in backend.predict_proba(texts, keywords)]
            for kind, backend in backends.items()
        },
    }


def self_check_difference(backend: Backend, record: Mapping[str, Any]) -> float | None:
    """Largest absolute difference between ``backend``'s probabilities for the recorded tweets
    and those export recorded for it; ``None`` when the record has none for this backend."""
    expected = record.get("probabilities", {}).get(backend.name)
    if not expected:
        return None
    scored = backend.predict_proba(record["texts"], record["keywords"])
    return float(np.max(np.abs(scored - np.asarray(expected, dtype=np.float64))))
