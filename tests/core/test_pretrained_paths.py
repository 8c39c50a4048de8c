"""A missing local model path names the command that builds it; Hub ids still go to the Hub."""

from __future__ import annotations

import pytest

from tweetcls.core.errors import PretrainedModelError
from tweetcls.core.pretrained import looks_local, resolve_pretrained


@pytest.mark.parametrize(
    "name",
    [
        "models/tiny-roberta",
        "runs/x/model",
        "runs/minilm",
        "./m",
        "../m",
        "/abs/m",
        "~/m",
        "best.ckpt",
        "a/b/c",
    ],
)
def test_paths_look_local(name):
    assert looks_local(name)


@pytest.mark.parametrize(
    "name",
    [
        "roberta-base",
        "sentence-transformers/all-MiniLM-L6-v2",
        "EleutherAI/gpt-neo-1.3B",  # a dot in a Hub id is no file suffix
        "example/unknown-model",
    ],
)
def test_hub_ids_do_not_look_local(name):
    assert not looks_local(name)


def test_an_existing_first_component_makes_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert not looks_local("checkpoints/model")
    (tmp_path / "checkpoints").mkdir()
    assert looks_local("checkpoints/model")


def test_missing_tiny_model_names_tiny_model_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PretrainedModelError, match="model directory not found") as err:
        resolve_pretrained("models/tiny-roberta")
    message = str(err.value)
    assert "tweetcls tiny-model --out models/tiny-roberta" in message
    assert "hf download" not in message and "Hub (" not in message


@pytest.mark.parametrize("name", ["runs/x/model", "runs/x"])
def test_missing_run_model_names_fit(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PretrainedModelError, match="model directory not found") as err:
        resolve_pretrained(name)
    message = str(err.value)
    assert "tweetcls fit" in message and "--trainer.default_root_dir runs/x" in message
    assert "runs/x/model" in message
    assert "hf download" not in message


@pytest.mark.parametrize("name", ["./m", "/nonexistent/tweetcls-model", "~/no-such-model-dir"])
def test_other_missing_paths_name_both_commands(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PretrainedModelError, match="model directory not found") as err:
        resolve_pretrained(name)
    message = str(err.value)
    assert "tweetcls tiny-model --out DIR" in message
    assert "<trainer.default_root_dir>/model" in message
    assert "hf download" not in message


def test_hub_like_name_offline_still_gets_the_hub_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("tweetcls.core.pretrained._hub_offline", lambda: True)
    monkeypatch.setattr("tweetcls.core.pretrained.try_to_load_from_cache", lambda *args: None)
    with pytest.raises(PretrainedModelError, match="HF_HUB_OFFLINE=1 is set") as err:
        resolve_pretrained("example/unknown-model")
    assert "hf download example/unknown-model" in str(err.value)
    assert "model directory not found" not in str(err.value)


def test_packaged_name_offline_still_resolves(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("tweetcls.core.pretrained._hub_offline", lambda: True)
    monkeypatch.setattr("tweetcls.core.pretrained.try_to_load_from_cache", lambda *args: None)
    assert resolve_pretrained("sentence-transformers/all-MiniLM-L6-v2").endswith("model")
