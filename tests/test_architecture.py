"""The package's shape: import boundaries, module sizes, and the one command registry."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest
from helpers.paths import ROOT

from tweetcls.cli import main
from tweetcls.core.commands import COMMANDS

PACKAGE = ROOT / "src" / "tweetcls"
#: "no module over ~400 lines" (issue 11): a little slack for a docstring, none for a second
#: concept.
MAX_MODULE_LINES = 420


def test_import_contracts_hold():
    """import-linter's contracts in pyproject.toml: layers, a torch-free core, serving without
    the training stack, training without the HTTP service."""
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "lint-imports")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_module_is_over_the_size_limit():
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_nothing_rewrites_sys_argv():
    """Commands get their arguments explicitly from tweetcls.cli.main."""
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    assert ast.unparse(target) != "sys.argv", f"{path}:{node.lineno}"


def test_help_lists_every_registered_command_under_the_program_name(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tweetcls ")
    for name, command in COMMANDS.items():
        assert name in out and command.help in " ".join(out.split())


def test_python_dash_m_names_itself_tweetcls():
    result = subprocess.run(
        [sys.executable, "-m", "tweetcls", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: tweetcls ")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help_under_its_own_name(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    prog = "tweetcls" if COMMANDS[name].lightning else f"tweetcls {name}"
    assert out.startswith(f"usage: {prog} "), out[:200]


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["trian"])
    assert exc.value.code == 2
    assert "invalid choice: 'trian'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["preprocess", "tiny-model", "kfold", "sweep", "export"])
def test_training_side_commands_take_config_and_print_config(name, capsys):
    with pytest.raises(SystemExit):
        main([name, "--help"])
    out = capsys.readouterr().out
    assert "--config" in out and "--print_config" in out


def test_a_bool_option_is_a_switch(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "sweeps/tiny.yaml", "--subprocess", "--print_config"])
    assert exc.value.code == 0
    printed = capsys.readouterr().out
    assert "subprocess: true" in printed and "enqueue_defaults: false" in printed
