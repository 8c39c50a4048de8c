"""``tweetcls serve``'s settings: flags generated from ServeSettings, ``--config`` files,
TWEETCLS_* variables, one-line errors (exit code 2) for bad values and for a corrupt or
incomplete bundle, before uvicorn starts."""

from __future__ import annotations

import os
import pickle
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers.servers import free_port

from tweetcls.cli import main
from tweetcls.core.bundle import BACKEND_FILES
from tweetcls.core.errors import ConfigError
from tweetcls.monitoring.settings import parse_command_line
from tweetcls.serving import app as app_module
from tweetcls.serving.app import create_app
from tweetcls.serving.command import serve_argv, worker_settings
from tweetcls.serving.loading import load_model
from tweetcls.serving.settings import ServeSettings

PROG = "tweetcls serve"


@pytest.fixture(autouse=True)
def _no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set the TWEETCLS_* variables they need; none leaks in from the caller's shell."""
    import os

    for name in [n for n in os.environ if n.upper().startswith("TWEETCLS_")]:
        monkeypatch.delenv(name)


def parse(*args: str) -> ServeSettings:
    return parse_command_line(ServeSettings, list(args), PROG)


def squeezed(text: str) -> str:
    """``text`` without whitespace (argparse wraps help lines, also after hyphens)."""
    return re.sub(r"\s+", "", text)


def test_help_lists_every_flag_with_its_help_and_variable(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {PROG} ")
    for name, field in ServeSettings.model_fields.items():
        assert f"--{name} " in out, name
        assert field.description, f"{name} has no help"
        assert squeezed(field.description) in squeezed(out), name
        assert f"ENV:   TWEETCLS_{name.upper()}\n" in out, name
    assert "--max-wait-ms" not in out  # the old kebab-case flags are gone
    assert "{onnx-int8,onnx,pytorch}" in out


def test_flags_variables_and_defaults(tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = parse("--model", str(tiny_bundle))
    assert defaults.model == tiny_bundle and defaults.port == 8000 and not defaults.log_text
    assert defaults.backend == "onnx-int8" and defaults.threads is None

    monkeypatch.setenv("TWEETCLS_MODEL", str(tiny_bundle))
    monkeypatch.setenv("TWEETCLS_PORT", "8080")
    monkeypatch.setenv("TWEETCLS_MAX_BATCH_SIZE", "8")
    monkeypatch.setenv("TWEETCLS_LOG_TEXT", "true")
    from_env = parse()
    assert (from_env.model, from_env.port, from_env.max_batch_size) == (tiny_bundle, 8080, 8)
    assert from_env.log_text is True

    flags_win = parse("--port", "9000", "--log_text", "false", "--max_batch_size=16")
    assert (flags_win.port, flags_win.log_text, flags_win.max_batch_size) == (9000, False, 16)


@pytest.mark.parametrize(
    ("args", "log_text", "access_log"),
    [
        ([], False, False),
        (["--log_text"], True, False),
        (["--log_text", "true"], True, False),
        (["--log_text", "--access_log"], True, True),
        (["--access_log", "--log_text", "false"], False, True),
        (["--log_text=1"], True, False),
    ],
)
def test_boolean_flags_alone_or_with_a_value(args, log_text, access_log) -> None:
    settings = parse("--model", ".", *args)
    assert (settings.log_text, settings.access_log) == (log_text, access_log)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {}, "--model: required (or set TWEETCLS_MODEL)"),
        (["--max_batch_size", "0"], {}, "--max_batch_size 0: Input should be greater than"),
        (["--port", "http"], {}, "--port 'http': Input should be a valid integer"),
        ([], {"TWEETCLS_PORT": "70000"}, "--port 70000: Input should be less than or equal"),
        (["--backend", "tensorrt"], {}, "--backend 'tensorrt': Input should be 'onnx-int8'"),
        (["--max_queue", "10"], {}, "--max_queue 10: must be >= --max_items (64)"),
        (["--log_text", "maybe"], {}, "--log_text 'maybe': Input should be a valid boolean"),
        (["--max-batch-size", "8"], {}, "unrecognized arguments: --max-batch-size 8"),
        (["--threads"], {}, "argument --threads: expected one argument"),
        (["--database_url", "mysql://x/y"], {}, "--database_url: request log: mysql://x/y: unsup"),
    ],
)
def test_bad_values_are_one_error_line_naming_the_flag(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch, capsys, args, env, message
) -> None:
    if not message.startswith("--model"):
        monkeypatch.setenv("TWEETCLS_MODEL", str(tiny_bundle))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", *args])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert message in lines[0], lines[0]
    assert captured.out == ""


def test_a_password_in_the_database_url_is_not_repeated(tiny_bundle: Path) -> None:
    url = "mysql://user:s3cret@db.example/log"
    with pytest.raises(ConfigError) as error:
        parse("--model", str(tiny_bundle), "--database_url", url)
    assert "s3cret" not in str(error.value) and "--database_url" in str(error.value)


@pytest.mark.parametrize("given", [None, "true"])
def test_the_tokenizer_runs_without_its_own_threads_unless_told(
    given: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if given is None:
        monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    else:
        monkeypatch.setenv("TOKENIZERS_PARALLELISM", given)
    with pytest.raises(SystemExit):  # set before the model loads (here: fails to)
        main(["serve", "--model", str(tmp_path / "missing")])
    assert os.environ["TOKENIZERS_PARALLELISM"] == (given or "false")


def test_bad_bundle_directory_is_one_error_line(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--model", str(tmp_path / "missing")])
    assert exit_info.value.code == 2
    assert "model directory not found" in capsys.readouterr().err


def test_workers_receive_the_checked_settings(tiny_bundle: Path, tmp_path: Path) -> None:
    assert worker_settings(parse("--model", str(tiny_bundle)), cpus=8).threads is None  # 1 worker
    key_file = tmp_path / "keys.txt"
    key_file.write_text("# ops\n" + "f" * 24 + "\n")
    settings = parse(
        "--model", str(tiny_bundle), "--workers", "3", "--api_keys", "a" * 20 + "," + "b" * 20,
        "--api_key_file", str(key_file), "--cors_origins", "https://app.example.org",
        "--log_text", "--max_queue_ms", "80",
    )  # fmt: skip
    settings = worker_settings(settings, cpus=8)
    assert settings.threads == 2  # the CPUs shared among the workers
    key_file.unlink()  # a worker does not read the file again
    rebuilt = pickle.loads(pickle.dumps(settings))  # what `spawn` hands each worker
    assert rebuilt.access_keys() == settings.access_keys() == ("a" * 20, "b" * 20, "f" * 24)
    assert rebuilt == settings


def test_a_config_file_sits_between_variables_and_flags(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    config = tmp_path / "serve.yaml"
    keys = "k" * 20 + "," + "m" * 20
    config.write_text(
        f"model: {tiny_bundle}\nport: 8100\nmax_items: 8\nlog_text: true\napi_keys: {keys}\n"
        "cors_origins: [https://a.example.org, https://b.example.org]\n"
    )
    monkeypatch.setenv("TWEETCLS_PORT", "8080")
    monkeypatch.setenv("TWEETCLS_MAX_BATCH_SIZE", "4")
    settings = parse("--config", str(config), "--max_items", "16")
    assert (settings.port, settings.max_batch_size, settings.max_items) == (8100, 4, 16)
    assert settings.log_text is True and settings.access_keys() == ("k" * 20, "m" * 20)
    assert settings.cors_origins == ["https://a.example.org", "https://b.example.org"]

    url = "postgresql+psycopg://tweetcls:s3cret@db:5432/log"
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--config", str(config), "--database_url", url, "--print_config"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "port: 8100" in printed and "max_items: 8" in printed
    assert "s3cret" not in printed and "k" * 20 not in printed  # secrets are masked


def test_serve_argv_spells_settings_as_flags(tiny_bundle: Path) -> None:
    argv = serve_argv(model=tiny_bundle, port=8001, log_text=True, threads=None)
    assert argv[1:4] == ["-m", "tweetcls", "serve"]
    settings = parse(*argv[4:])
    assert (settings.model, settings.port, settings.log_text) == (tiny_bundle, 8001, True)
    assert "--threads" not in argv
    with pytest.raises(ValueError, match="max_batch"):
        serve_argv(max_batch=3)


def test_a_preloaded_model_is_served_without_loading_again(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ServeSettings(
        model=tiny_bundle, database_url=f"sqlite:///{tmp_path / 'r.db'}", drift_interval_s=0
    )
    model = load_model(settings)

    def no_second_load(_settings):
        raise AssertionError("the lifespan loaded the model again")

    monkeypatch.setattr(app_module, "load_model", no_second_load)
    with TestClient(create_app(settings, model)) as client:
        answer = client.post("/predict", json={"text": "Forest fire near La Ronge"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"] == model.bundle.version


def corrupt(bundle: Path, tmp_path: Path, damage: str) -> Path:
    """A copy of ``bundle`` with one kind of damage."""
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    if damage == "int8 model bytes":
        model_file = copy / BACKEND_FILES["onnx-int8"]
        data = bytearray(model_file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        model_file.write_bytes(bytes(data))
    elif damage == "no int8 model":
        (copy / BACKEND_FILES["onnx-int8"]).unlink()
    elif damage == "no tokenizer":
        (copy / "tokenizer.json").unlink()
    elif damage == "broken tokenizer":
        (copy / "tokenizer.json").write_text('{"version": "1.0", "model": 5}')
    elif damage == "serving.json not JSON":
        (copy / "serving.json").write_text("{not json")
    return copy


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("int8 model bytes", "SHA-256 differs from serving.json"),
        ("no int8 model", "--backend onnx-int8:"),
        ("no tokenizer", "tokenizer.json: not found"),
        ("broken tokenizer", "the onnx-int8 backend does not load"),
        ("serving.json not JSON", "serving.json: not valid JSON"),
    ],
)
def test_corrupt_bundle_is_one_error_line_before_uvicorn_starts(
    tiny_bundle: Path, tmp_path: Path, damage: str, message: str
) -> None:
    broken = corrupt(tiny_bundle, tmp_path, damage)
    command = serve_argv(
        model=broken, port=free_port(), database_url=f"sqlite:///{tmp_path / 'requests.db'}"
    )
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert message in lines[0], lines[0]
    assert "Uvicorn running" not in proc.stderr + proc.stdout
    assert not (tmp_path / "requests.db").exists()  # nothing opened before the check
