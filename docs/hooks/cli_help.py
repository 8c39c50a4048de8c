"""The CLI reference (``<!-- generated: cli -->``): every registered command's ``--help``.

Each command's help is captured in-process: its module's ``main([... "--help"], prog)`` prints
the help and exits, with ``COLUMNS`` fixed so the wrapping does not depend on the terminal. A
help of at most :data:`MAX_HELP_LINES` lines is shown whole. Longer ones (the LightningCLI
commands ``fit``, ``validate``, ``test``, ``predict`` and ``preprocess``, which list every
config key) are summarised: the first line of the usage, then a table of the option groups
(``--trainer.*``, ``--model.*``, ...) with their sizes, and a pointer to the configuration page.

Importing the training stack for those parsers takes most of a build's time, so the rendered
section is cached under ``$TWEETCLS_CACHE/docs`` (default ``~/.cache/tweetcls/docs``), keyed by
a hash of everything the helps depend on: the package's source files, this file and the
versions of every installed distribution. Any change to them renders the section anew;
``TWEETCLS_DOCS_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import io
import os
import re
import sys
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Terminal width the helps are wrapped to.
COLUMNS = 100
#: Longer helps are summarised rather than shown whole.
MAX_HELP_LINES = 120
_OPTION = re.compile(r"^\s{2,}(--[A-Za-z0-9_.-]+)")


@contextlib.contextmanager
def fixed_columns(columns: int = COLUMNS) -> Iterator[None]:
    """Within the block, ``COLUMNS`` is ``columns`` (argparse and jsonargparse wrap to it)."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous


def command_help(name: str) -> str:
    """``tweetcls NAME --help`` as printed, captured in-process."""
    from tweetcls.core.commands import COMMANDS, PROG

    command = COMMANDS[name]
    args = [name, "--help"] if command.lightning else ["--help"]
    prog = PROG if command.lightning else f"{PROG} {name}"
    out = io.StringIO()
    with (
        fixed_columns(),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(io.StringIO()),
        contextlib.suppress(SystemExit),
    ):
        import_module(command.module).main(args, prog=prog)
    return out.getvalue()


def option_flags(help_text: str) -> list[str]:
    """The long options a help documents, once each, in order of appearance."""
    flags = (_OPTION.match(line) for line in help_text.splitlines())
    return list(dict.fromkeys(match.group(1) for match in flags if match))


def option_groups(flags: list[str]) -> tuple[dict[str, int], list[str]]:
    """Options per config group (``--trainer`` and ``--trainer.*``), and the ungrouped ones."""
    groups = {flag.split(".")[0] for flag in flags if "." in flag}
    counts: dict[str, int] = {}
    single: list[str] = []
    for flag in flags:
        group = flag.split(".")[0]
        if group in groups:
            counts[group] = counts.get(group, 0) + 1
        else:
            single.append(flag)
    return counts, single


def summarise(name: str, help_text: str) -> str:
    """A long help as its first usage line, its option groups and where they are documented."""
    lines = help_text.splitlines()
    flags = option_flags(help_text)
    counts, single = option_groups(flags)
    rows = [f"| `{group}.*` | {count} |" for group, count in counts.items()]
    rows.append(f"| {', '.join(f'`{flag}`' for flag in single)} | {len(single)} |")
    return (
        f"```text\n{lines[0].rstrip()} ...\n```\n\n"
        f"`tweetcls {name} --help` prints {len(lines)} lines: {len(flags)} options, one per "
        "config key, grouped as below. Their meaning and defaults are those of the experiment "
        "YAML: see [Configuration](configuration.md); `--print_config` shows the resolved "
        "values.\n\n| option group | options |\n| --- | ---: |\n" + "\n".join(rows) + "\n"
    )


def render_command(name: str) -> str:
    """One command's section: its help whole, or summarised when longer than the limit."""
    from tweetcls.core.commands import COMMANDS

    command = COMMANDS[name]
    help_text = command_help(name)
    summary = command.help[:1].upper() + command.help[1:]
    head = f"### `tweetcls {name}`\n\n{summary}. Module: `{command.module}`.\n\n"
    if command.lightning or len(help_text.splitlines()) > MAX_HELP_LINES:
        return head + summarise(name, help_text)
    return head + f"```text\n{help_text.rstrip()}\n```\n"


def cache_key() -> str:
    """A hash of what the helps depend on: package sources, this file, installed versions."""
    digest = hashlib.sha256(f"{sys.version} {COLUMNS} {MAX_HELP_LINES}".encode())
    for path in sorted([*(ROOT / "src/tweetcls").rglob("*.py"), Path(__file__)]):
        digest.update(str(path.relative_to(ROOT)).encode() + path.read_bytes())
    versions = sorted(
        f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()
    )
    digest.update("\n".join(versions).encode())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    """Where rendered sections are kept: ``$TWEETCLS_CACHE/docs``, else ``~/.cache/tweetcls``."""
    base = os.environ.get("TWEETCLS_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "tweetcls"
    )
    return Path(base).expanduser() / "docs"


def render_cli() -> str:
    """The CLI section, from the cache when its key matches, else rendered (and cached)."""
    if os.environ.get("TWEETCLS_DOCS_CACHE") == "0":
        return render_cli_uncached()
    path = cache_dir() / f"cli-{cache_key()}.md"
    if path.is_file():
        return path.read_text()
    text = render_cli_uncached()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(text)
        partial.replace(path)
    return text


def render_cli_uncached() -> str:
    """The command table, ``tweetcls --help`` and each command's section."""
    sys.path.insert(0, str(ROOT / "src"))
    from tweetcls.cli import build_parser
    from tweetcls.core.commands import COMMANDS

    out = ["| command | what it does | module |", "| --- | --- | --- |"]
    out += [f"| `tweetcls {n}` | {c.help} | `{c.module}` |" for n, c in COMMANDS.items()]
    with fixed_columns():
        top = build_parser().format_help()
    out.append(f"\n### `tweetcls --help`\n\n```text\n{top.rstrip()}\n```\n")
    out += [render_command(name) for name in COMMANDS]
    return "\n".join(out)
