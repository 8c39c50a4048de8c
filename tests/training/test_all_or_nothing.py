"""All-or-nothing outputs (issue 21 §1): a stage killed or out of disk space while it writes an
output leaves the previous output intact (or, between the two renames that swap a directory,
absent), never half-written; the next run succeeds and removes what the dead one left behind.

Every output goes through :func:`tweetcls.core.atomic.atomic_path`. The faults are
deterministic, not timed: the stage runs as ``python -c DRIVER ARGS`` (the real CLI,
``tweetcls.cli.main``), and DRIVER wraps ``atomic_path`` so that, for the one output named in
``$TWEETCLS_FAULT``, it

* sends the process SIGKILL at a chosen moment (``at``):

  - ``open``: when the writer opens the ``nth`` file of the output for writing (an audit hook
    on ``open``; files written by native code, such as safetensors weights, are not counted):
    the files before it are complete, that one is empty;
  - ``mid-file`` (the small writer below only): half of a file's characters written;
  - ``written``: the whole output is in the staging directory, not yet renamed onto its path;
  - ``moved-aside``: between the two renames that swap a directory (it is then absent);
  - ``published``: right after the new output was renamed onto its path;
  - ``deleting-old``: after the first file of the previous output was deleted;

* or fills the file system the output is on (``fill``: a file grown until ``ENOSPC`` when the
  output's block starts), on a small tmpfs the test mounts (needs root);

* or, without root, limits the size of the files the process may write instead
  (``file_size_limit``: the kernel's ``RLIMIT_FSIZE``, set when the output's block starts;
  SIGXFSZ is ignored, as Python does, so a write past the limit fails with ``EFBIG``, "File
  too large", partway through a file; :func:`test_atomic_path_file_size_limit` runs it
  everywhere).

``python -c DRIVER --write KIND PATH TEXT`` writes a file or a three-file directory through
``atomic_path`` with no stage around it; the tests of ``atomic_path`` itself use it (each
well under a second). A stage's test runs it twice, once in a new process that imports torch;
those of fit, predict and export take over 20 s and are marked ``slow``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers.paths import QUIET, tiny_args
from helpers.runs import EVALUATING_A_COPY, snapshot

from tweetcls.cli import main
from tweetcls.core.atomic import atomic_path, write_text
from tweetcls.core.bundle import BACKEND_FILES, TOKENIZER_FILE, load_bundle
from tweetcls.data.preprocess import PROCESSED_FILES, SETTINGS_FILE, read_processed
from tweetcls.training.figures import FIGURES

pytestmark = [
    pytest.mark.filterwarnings(EVALUATING_A_COPY),
    # the rerun of a fit the test killed finds that run's checkpoints
    pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty"),
]

DRIVER = r"""
import contextlib, errno, json, os, resource, shutil, signal, sys

from tweetcls.core import atomic
from tweetcls.core.errors import TweetclsError

FAULT = json.loads(os.environ.get("TWEETCLS_FAULT", "{}"))
TARGET = os.path.abspath(FAULT["target"]) if FAULT else None
AT = FAULT.get("at")
state = {"phase": None, "staging": None, "opens": 0}


def kill(where):
    print(f"fault: SIGKILL {where}", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def under(path, root):
    return root is not None and (path == root or path.startswith(root + os.sep))


def audit(event, args):
    if event != "open" or AT != "open" or state["phase"] != "writing":
        return
    path, mode, flags = args
    if isinstance(path, int):
        return
    path = os.path.abspath(os.fsdecode(os.fspath(path)))
    writes = any(c in mode for c in "wax+") if mode else flags & (os.O_WRONLY | os.O_RDWR)
    if writes and (under(path, state["staging"]) or under(path, TARGET)):
        state["opens"] += 1
        if state["opens"] == FAULT["nth"]:
            kill(f"while writing the output, opening its file number {state['opens']}: {path}")


def fill(path):
    # grow a file until the file system is full
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    chunk = bytes(1 << 20)
    try:
        while chunk:
            try:
                os.write(fd, chunk)
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
                chunk = chunk[: len(chunk) // 2]
    finally:
        os.close(fd)


real_replace, real_unlink, real_atomic_path = os.replace, os.unlink, atomic.atomic_path


def replace(src, dst, *args, **kwargs):
    real_replace(src, dst, *args, **kwargs)
    if state["phase"] == "publishing":
        if AT == "moved-aside" and os.path.abspath(src) == TARGET:
            kill("between moving the previous output aside and renaming the new one onto it")
        if AT == "published" and os.path.abspath(dst) == TARGET:
            kill("right after renaming the new output onto its path")


def unlink(path, *args, **kwargs):
    real_unlink(path, *args, **kwargs)
    if state["phase"] == "publishing" and AT == "deleting-old":
        kill("while deleting the previous output")


@contextlib.contextmanager
def atomic_path(path):
    if os.path.abspath(path) != TARGET:
        with real_atomic_path(path) as tmp:
            yield tmp
        return
    limit = FAULT.get("file_size_limit")
    with real_atomic_path(path) as tmp:
        state.update(phase="writing", staging=os.path.abspath(tmp.parent))
        if FAULT.get("fill"):
            fill(FAULT["fill"])
        if limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        try:
            yield tmp
        finally:
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        if AT == "written":
            kill("after writing the whole output, before renaming it onto its path")
        state["phase"] = "publishing"
    state["phase"] = None


def write(path, text, kill_here):
    with open(path, "w", encoding="utf-8") as out:
        out.write(text[: len(text) // 2])
        out.flush()
        if kill_here and AT == "mid-file":
            kill(f"in the middle of writing {path}")
        out.write(text[len(text) // 2 :])


sys.addaudithook(audit)
os.replace, os.unlink, atomic.atomic_path = replace, unlink, atomic_path
if sys.argv[1] == "--write":
    kind, path, text = sys.argv[2:]
    try:
        with atomic.atomic_path(path) as tmp:
            if kind == "file":
                write(tmp, text, True)
            else:
                tmp.mkdir()
                for part in range(3):
                    write(tmp / f"part{part}.txt", text, part == 1)
    except TweetclsError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
else:
    from tweetcls.cli import main

    main(sys.argv[1:])
"""


def drive(args: list[str], fault: dict | None, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``tweetcls ARGS`` (or ``--write ...``) through DRIVER with ``fault``."""
    env = os.environ.copy()
    env.pop("TWEETCLS_FAULT", None)
    if fault is not None:
        env["TWEETCLS_FAULT"] = json.dumps(fault)
    return subprocess.run(
        [sys.executable, "-c", DRIVER, *map(str, args)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def contents(path: Path) -> dict[str, str] | None:
    """``{relative path: sha256}`` of a file or a directory's files; ``None`` if absent."""
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    return snapshot(path) if path.is_dir() else None


def leftovers(path: Path) -> list[str]:
    """Entries beside ``path`` that belong to its writing (staging directories)."""
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


def tree(root: Path) -> dict[str, str]:
    """``{path relative to root: sha256}`` of every file under ``root``, staging ones excepted."""
    return {
        k: v for k, v in snapshot(root).items() if not any(p.startswith(".") for p in Path(k).parts)
    }


def assert_killed(run: subprocess.CompletedProcess, where: str) -> None:
    assert run.returncode == -signal.SIGKILL, f"not killed {where}:\n{run.stderr[-3000:]}"
    assert "fault: SIGKILL" in run.stderr


def assert_one_error(stderr: str, output: Path, reason: str) -> None:
    """No traceback, and one ``error:`` line, the last, naming the output and the cause."""
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == [stderr.strip().splitlines()[-1]], stderr[-3000:]
    assert str(output) in errors[0] and reason in errors[0], errors[0]
    assert "the previous one, if any, is unchanged" in errors[0]


# --- atomic_path itself, in a tiny writer process ----------------------------------------------

OLD, NEW, NEWER = "old " * 300, "new " * 300, "newer " * 300
#: Where a kill leaves the output: "old" (intact), "new" (complete), or absent (None).
AFTER_KILL = {"mid-file": "old", "written": "old", "moved-aside": None, "published": "new"}


def written(path: Path, kind: str, text: str) -> dict[str, str] | None:
    """What ``path`` holds after the writer wrote ``text`` completely."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "file":
        path.write_text(text, encoding="utf-8")
    else:
        path.mkdir()
        for part in range(3):
            (path / f"part{part}.txt").write_text(text, encoding="utf-8")
    return contents(path)


@pytest.mark.parametrize(
    ("kind", "at"),
    [("file", at) for at in ("mid-file", "written", "published")]
    + [("dir", at) for at in ("mid-file", "written", "moved-aside", "published", "deleting-old")],
)
def test_atomic_path_killed(kind, at, tmp_path):
    """SIGKILL at each moment of writing a file or a directory that replaces an older one: the
    path holds the old output or the new one, complete (absent only between the two renames of
    a directory swap); the next write succeeds and removes the dead writer's staging directory.
    Before the fix, a kill while deleting the old directory left it half deleted."""
    expected = {
        "old": written(tmp_path / "old" / "out", kind, OLD),
        "new": written(tmp_path / "new" / "out", kind, NEW),
        None: None,
    }[AFTER_KILL.get(at, "new")]
    out = tmp_path / "out"
    written(out, kind, OLD)

    run = drive(["--write", kind, out, NEW], {"target": str(out), "at": at}, tmp_path)
    assert_killed(run, at)
    assert contents(out) == expected
    assert leftovers(out), "the killed writer left its staging directory"

    run = drive(["--write", kind, out, NEWER], None, tmp_path)
    assert run.returncode == 0, run.stderr
    assert contents(out) == written(tmp_path / "newer" / "out", kind, NEWER)
    assert leftovers(out) == []


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_atomic_path_file_size_limit(kind, tmp_path):
    """RLIMIT_FSIZE (1000 bytes) stops the 1200-byte file partway: one ``error:`` line, exit 2,
    the old output intact and nothing beside it; without the limit the next write succeeds."""
    out = tmp_path / "out"
    old = written(out, kind, OLD)
    run = drive(
        ["--write", kind, out, NEW], {"target": str(out), "file_size_limit": 1000}, tmp_path
    )
    assert run.returncode == 2, run.stderr
    assert_one_error(run.stderr, out, "File too large")
    assert contents(out) == old
    assert leftovers(out) == []
    assert drive(["--write", kind, out, NEW], None, tmp_path).returncode == 0
    assert contents(out) == written(tmp_path / "new" / "out", kind, NEW)


def test_atomic_path_keeps_a_live_writers_staging(tmp_path):
    """A write of the same target meanwhile removes only dead writers' staging directories."""
    out = tmp_path / "out.txt"
    with atomic_path(out) as first:
        first.write_text("first")
        write_text(out, "second")
        assert first.is_file()
        assert out.read_text() == "second"
    assert out.read_text() == "first"
    assert leftovers(out) == []


def test_atomic_path_removes_only_its_own_stale_staging(tmp_path):
    """Stale staging directories of other names, and other hidden files, are left alone."""
    out = tmp_path / "a"
    other = tmp_path / ".a.b.k2j3h4g5.tmp"  # the staging directory of a target named "a.b"
    other.mkdir()
    hidden = tmp_path / ".a.notes"
    hidden.write_text("keep")
    write_text(out, "a")
    assert other.is_dir() and hidden.is_file()
    write_text(tmp_path / "a.b", "b")
    assert not other.exists() and hidden.is_file()


def test_atomic_path_failed_swap_keeps_the_old_directory(tmp_path):
    """A block that wrote nothing: the rename fails and the old directory is put back."""
    out = tmp_path / "out"
    old = written(out, "dir", OLD)
    with pytest.raises(FileNotFoundError), atomic_path(out):
        pass
    assert contents(out) == old
    assert leftovers(out) == []


# --- the stages, through the real CLI ------------------------------------------------------------


@pytest.fixture(scope="module")
def tuned_checkpoint(tmp_path_factory, tiny_fit) -> Path:
    """``tiny_fit``'s best checkpoint with the threshold tuned on val: other predictions, other
    reports (the barely trained model's probabilities all sit just below 0.5)."""
    cut = pd.read_csv(tiny_fit / "logs" / "metrics.csv")["val/threshold_tuned"].dropna()
    best = torch.load(
        tiny_fit / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False
    )
    best["hyper_parameters"]["decision_threshold"] = float(cut.iloc[-1])
    path = tmp_path_factory.mktemp("tuned") / "tuned.ckpt"
    torch.save(best, path)
    return path


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    """One tokenization cache for the module's runs."""
    return tmp_path_factory.mktemp("cache")


@dataclass(frozen=True)
class Stage:
    """One stage: the output a fault hits, how to run it, how its previous output is made.

    ``args(ctx, work, previous)`` are the command's arguments (``previous``: a variant whose
    output differs); ``outputs`` are all the stage's outputs under the work directory (each file
    must be its previous or its next version after a fault); ``check`` validates a complete
    output.
    """

    name: str
    output: str
    outputs: tuple[str, ...]
    needs: tuple[str, ...]
    args: Callable[[dict, Path, bool], list[str]]
    check: Callable[[Path, dict], None]
    kill: dict
    file_size_limit: int
    copy_previous: Callable[[dict], Path] | None = None
    #: Its tests take over 20 s (two runs of the stage, one a new process that imports torch).
    slow: bool = False


def _lightning(command: str, ctx: dict, work: Path, *extra: str) -> list[str]:
    return [
        command,
        *tiny_args(ctx["raw_dir"], ctx["processed_dir"], ctx["tiny_model_dir"], ctx["cache_dir"]),
        *("--config", str(QUIET), "--trainer.default_root_dir", str(work / "run")),
        *("--overwrite", "true"),  # each test replaces the previous output on purpose
        *extra,
    ]


def _checkpoint(ctx: dict, previous: bool) -> str:
    """The previous output comes from the 0.5 threshold, the next from the tuned one."""
    return str(
        ctx["tiny_fit"] / "checkpoints" / "best.ckpt" if previous else ctx["tuned_checkpoint"]
    )


def _preprocess(ctx: dict, work: Path, previous: bool) -> list[str]:
    return [
        "preprocess",
        *tiny_args(ctx["raw_dir"], work / "data" / "processed", ctx["tiny_model_dir"]),
        *("--report_path", str(work / "reports" / "data.json")),
        *(("--data.split_seed", "7") if previous else ()),
    ]


def _fit(ctx: dict, work: Path, previous: bool) -> list[str]:
    limits = ("--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "2")
    return _lightning("fit", ctx, work, "--trainer.max_epochs", "1", *limits)


def _test(ctx: dict, work: Path, previous: bool) -> list[str]:
    ckpt, reports = _checkpoint(ctx, previous), str(work / "reports")
    return _lightning("test", ctx, work, "--ckpt_path", ckpt, "--report.dirpath", reports)


def _predict(ctx: dict, work: Path, previous: bool) -> list[str]:
    ckpt, submission = _checkpoint(ctx, previous), str(work / "predictions" / "submission.csv")
    return _lightning("predict", ctx, work, "--ckpt_path", ckpt, "--submission.path", submission)


def _export(ctx: dict, work: Path, previous: bool) -> list[str]:
    return [
        "export",
        *("--model", str(ctx["tiny_fit"] / "model"), "--out", str(work / "bundle")),
        *("--data_dir", str(ctx["processed_dir"]), "--raw_dir", str(ctx["raw_dir"])),
        *("--report_path", str(work / "reports" / "export.json"), "--max_f1_drop", "1"),
        *("--overwrite", "true"),
    ]


def _check_processed(out: Path, ctx: dict) -> None:
    assert {p.name for p in out.iterdir()} == {*PROCESSED_FILES, SETTINGS_FILE}
    for name in ("train.csv", "val.csv"):
        assert len(read_processed(out, name)) > 0
    assert len(read_processed(out, "test.csv")) == len(pd.read_csv(ctx["raw_dir"] / "test.csv"))


def _check_model(out: Path, ctx: dict) -> None:
    load_bundle(out)
    assert (out / BACKEND_FILES["pytorch"]).is_file() and (out / TOKENIZER_FILE).is_file()


def _check_figures(out: Path, ctx: dict) -> None:
    assert {p.name for p in out.iterdir()} == set(FIGURES)
    assert all(p.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for p in out.iterdir())


def _check_submission(out: Path, ctx: dict) -> None:
    submission = pd.read_csv(out)
    assert list(submission.columns) == ["id", "target"]
    assert submission["id"].tolist() == pd.read_csv(ctx["raw_dir"] / "test.csv")["id"].tolist()


def _check_bundle(out: Path, ctx: dict) -> None:
    bundle = load_bundle(out)
    assert set(bundle.info["validation"]) == set(BACKEND_FILES)
    assert all((out / name).is_file() for name in BACKEND_FILES.values())


EVALUATION = ("raw_dir", "processed_dir", "tiny_model_dir", "cache_dir", "tiny_fit")
STAGES = [
    Stage(
        name="preprocess",
        output="data/processed",
        outputs=("data/processed", "reports/data.json"),
        needs=("raw_dir", "tiny_model_dir"),
        args=_preprocess,  # the previous output: another split seed
        check=_check_processed,
        kill={"at": "open", "nth": 2},  # train.csv written, val.csv just opened
        file_size_limit=4096,  # train.csv stops at 4 KB
    ),
    Stage(
        name="fit",
        slow=True,
        output="run/model",
        outputs=("run/model",),
        needs=EVALUATION,
        args=_fit,  # the previous output: tiny_fit's model (20 steps, not 2)
        check=_check_model,
        # config.json and the weights (native code, not counted) written, the tokenizer begun
        kill={"at": "open", "nth": 2},
        # config.json (under 1 KB) is written, the weights (safetensors' native writer) stop
        file_size_limit=4096,
        copy_previous=lambda ctx: ctx["tiny_fit"] / "model",
    ),
    Stage(
        name="test",
        output="reports/figures",
        outputs=("reports",),
        needs=(*EVALUATION, "tuned_checkpoint"),
        args=_test,
        check=_check_figures,
        kill={"at": "open", "nth": 3},  # two figures drawn, the third begun
        file_size_limit=4096,  # the first figure stops at 4 KB
    ),
    Stage(
        name="predict",
        slow=True,
        output="predictions/submission.csv",
        outputs=("predictions",),
        needs=(*EVALUATION, "tuned_checkpoint"),
        args=_predict,
        check=_check_submission,
        kill={"at": "open", "nth": 1},  # the CSV just opened
        file_size_limit=4096,  # the CSV stops at 4 KB
    ),
    Stage(
        name="export",
        slow=True,
        output="bundle",
        outputs=("bundle", "reports/export.json"),
        needs=("raw_dir", "processed_dir", "tiny_fit", "tiny_bundle"),
        args=_export,  # the previous output: tiny_bundle, exported earlier
        check=_check_bundle,
        kill={"at": "open", "nth": 3},  # two files of the model copied, the third begun
        file_size_limit=4096,  # the first file over 4 KB that is copied stops there
        copy_previous=lambda ctx: ctx["tiny_bundle"],
    ),
]
STAGE_PARAMS = [
    pytest.param(stage, id=stage.name, marks=[pytest.mark.slow] if stage.slow else [])
    for stage in STAGES
]


@pytest.fixture(scope="module")
def previous_runs(tmp_path_factory) -> Callable[[Stage, dict], Path]:
    """``previous(stage, ctx)``: a work directory holding the stage's previous output (another
    run's, with other settings, so other bytes), made once per module."""
    roots: dict[str, Path] = {}

    def previous(stage: Stage, ctx: dict) -> Path:
        if stage.name not in roots:
            root = tmp_path_factory.mktemp(f"previous-{stage.name}")
            if stage.copy_previous is not None:
                shutil.copytree(stage.copy_previous(ctx), root / stage.output)
            else:
                main(stage.args(ctx, root, True))
            roots[stage.name] = root
        return roots[stage.name]

    return previous


def make_previous(stage: Stage, ctx: dict, work: Path, request) -> dict[str, str]:
    """Copy the stage's previous outputs into ``work``; return the contents of its output."""
    root = request.getfixturevalue("previous_runs")(stage, ctx)
    for name in stage.outputs:
        source, copy = root / name, work / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, copy)
        elif source.is_file():
            shutil.copy2(source, copy)
    before = contents(work / stage.output)
    assert before, f"{stage.name}: no previous output"
    return before


def outputs(stage: Stage, work: Path) -> dict[str, str]:
    """Every file of the stage's outputs: ``{path relative to work: sha256}``."""
    files = {}
    for name in stage.outputs:
        path = work / name
        if path.is_file():
            files[name] = contents(path)["."]
        elif path.is_dir():
            files.update({f"{name}/{k}": v for k, v in tree(path).items()})
    return files


def context(stage: Stage, request) -> dict:
    return {name: request.getfixturevalue(name) for name in stage.needs}


@pytest.mark.parametrize("stage", STAGE_PARAMS)
def test_stage_killed_while_writing(stage, request, tmp_path):
    """SIGKILL while the stage writes its output: the previous output is byte-identical, the
    dead writer's files are only in its staging directory, every other file the stage writes
    is its previous or its next version; the next run succeeds and removes the staging."""
    ctx = context(stage, request)
    out = tmp_path / stage.output
    before = make_previous(stage, ctx, tmp_path, request)
    files_before = outputs(stage, tmp_path)

    run = drive(stage.args(ctx, tmp_path, False), {"target": str(out), **stage.kill}, tmp_path)
    assert_killed(run, f"while writing {out}")
    assert contents(out) == before
    assert leftovers(out), "the killed writer left its staging directory"
    files_killed = outputs(stage, tmp_path)

    main(stage.args(ctx, tmp_path, False))
    stage.check(out, ctx)
    assert leftovers(out) == []
    files_after = outputs(stage, tmp_path)
    for name, digest in files_killed.items():
        assert digest in (files_before.get(name), files_after.get(name)), f"{name} half-written"


def test_preprocess_killed_while_deleting_the_previous_output(request, tmp_path):
    """SIGKILL after the first file of the previous processed directory was deleted: the path
    holds the new directory, complete (before the fix: the old one, half deleted)."""
    stage = STAGES[0]
    ctx = context(stage, request)
    out = tmp_path / stage.output
    make_previous(stage, ctx, tmp_path, request)
    run = drive(
        stage.args(ctx, tmp_path, False), {"target": str(out), "at": "deleting-old"}, tmp_path
    )
    assert_killed(run, "while deleting the previous output")
    stage.check(out, ctx)
    killed = contents(out)
    main(stage.args(ctx, tmp_path, False))
    assert contents(out) == killed  # the same as a complete run's (preprocess is deterministic)
    assert leftovers(out) == []


@dataclass
class NoSpace:
    """Where a stage runs out of space: its work directory, the fault, and the error's reason."""

    work: Path
    fault: dict
    reason: str
    filler: Path | None = None

    def free(self) -> None:
        if self.filler is not None:
            self.filler.unlink()


@pytest.fixture
def no_space(tmp_path) -> Iterator[Callable[[Stage], NoSpace]]:
    """``no_space(stage)``: a 128 MiB tmpfs that fills up (a file grown until ``ENOSPC`` when
    the output starts), unmounted afterwards; where mounting needs root that the test lacks,
    the file size limit (``EFBIG``) instead."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=128m", "tmpfs", str(disk)],
            capture_output=True,
            text=True,
        )
        if os.geteuid() == 0
        else None
    )
    mounted = mount is not None and mount.returncode == 0

    def make(stage: Stage) -> NoSpace:
        out = str(disk / stage.output)
        if mounted:
            filler = disk / "filler"
            return NoSpace(
                disk, {"target": out, "fill": str(filler)}, "No space left on device", filler
            )
        return NoSpace(
            disk, {"target": out, "file_size_limit": stage.file_size_limit}, "File too large"
        )

    try:
        yield make
    finally:
        if mounted:  # lazily: the in-process run may still map a file there (safetensors, ORT)
            subprocess.run(["umount", "--lazy", str(disk)], check=True)


@pytest.mark.parametrize("stage", STAGE_PARAMS)
def test_stage_out_of_space(stage, request, no_space):
    """The stage's file system fills up when the output starts (a small tmpfs; without root,
    the file size limit): exit 2 and one ``error:`` line, the previous output byte-identical and
    nothing left beside it; once the space is freed, the next run succeeds."""
    ctx = context(stage, request)
    space = no_space(stage)
    work = space.work
    out = work / stage.output
    before = make_previous(stage, ctx, work, request)
    run = drive(stage.args(ctx, work, False), space.fault, work)
    assert run.returncode == 2, run.stderr[-3000:]
    assert_one_error(run.stderr, out, space.reason)
    assert contents(out) == before
    assert leftovers(out) == []

    space.free()
    main(stage.args(ctx, work, False))
    stage.check(out, ctx)
    assert leftovers(out) == []
