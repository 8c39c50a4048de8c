"""Word attributions by occlusion and their faithfulness check, on fake scorers whose answers
are known (export's record of the check: tests/serving/test_explain.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tweetcls.inference.explain import explain, faithfulness, occlusions

TEXTS = [f"the big {w} near the old river bank today" for w in ("fire", "flood", "party", "cake")]


def fire_scorer(texts, keywords) -> np.ndarray:
    """0.9 for a text with 'fire' or 'flood', 0.1 otherwise: those words decide."""
    return np.array([0.9 if ("fire" in t or "flood" in t) else 0.1 for t in texts], np.float32)


def test_attributions_name_the_deciding_word() -> None:
    result = explain(fire_scorer, "Forest fire near La Ronge", None)
    assert result.probability == pytest.approx(0.9)
    assert result.words == ["Forest", "fire", "near", "La", "Ronge"]
    assert result.attributions == pytest.approx([0.0, 0.8, 0.0, 0.0, 0.0])
    assert occlusions("a b c d", max_words=2) == (["a", "b", "c", "d"], ["b c d", "a c d"])
    assert explain(fire_scorer, "a b c d", None, max_words=2).attributions[2:] == [None, None]


def test_faithful_attributions_beat_random_words_and_a_blind_scorer_does_not() -> None:
    rows = faithfulness(fire_scorer, TEXTS * 10, [None] * 40, ks=(1, 2))
    assert [row["k"] for row in rows] == [1, 2]
    assert rows[0]["drop_top"] > rows[0]["drop_random"] and rows[0]["gap_ci"][0] > 0
    assert all(row["faithful"] for row in rows)
    blind = faithfulness(lambda t, k: np.full(len(t), 0.7, np.float32), TEXTS, [None] * 4)
    assert all(row["gap"] == 0 and not row["faithful"] for row in blind)
