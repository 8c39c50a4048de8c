"""MkDocs hook: pages generated from the command registry and from ``reports/*.json``.

Markers replaced in a page's Markdown: ``<!-- generated: cli -->`` (the commands of
``tweetcls.cli.COMMANDS`` with each one's help) and ``<!-- generated: results -->`` (tables of
the last measurements in ``reports/``). A missing or malformed report fails the build.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports"
CLI_MARKER = "<!-- generated: cli -->"
RESULTS_MARKER = "<!-- generated: results -->"

#: The reports the results page renders: file name -> title.
REPORT_FILES = {
    "metrics.json": "Test metrics of the pipeline model (`dvc repro`)",
    "export.json": "Export: PyTorch, ONNX fp32 and int8",
    "kfold.json": "Cross-validation (`tweetcls kfold`)",
    "ensemble.json": "Ensemble (`tweetcls ensemble`)",
    "data.json": "Data (`tweetcls preprocess`)",
}

_cache: dict[str, str] = {}


def fmt(value: Any) -> str:
    """Format one value as the results tables show it (floats to 4 places)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list) and all(isinstance(v, (int, float)) for v in value):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, (dict, list)):
        return "`" + json.dumps(value)[:80] + "`"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _provenance(path: Path) -> str:
    mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    parts = [f"modified {mtime:%Y-%m-%d %H:%M} UTC"]
    try:
        commit = subprocess.run(
            ["git", "log", "-1", "--format=%h %cs", "--", str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    if commit:
        parts.append(f"last commit {commit}")
    return ", ".join(parts)


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and len(prefix.split(".")) < 3:
            rows.extend(_flatten(value, name + "."))
        else:
            rows.append((name, value))
    return rows


def load_report(path: Path) -> dict[str, Any]:
    """Read one JSON report; raise :class:`PluginError` naming it if missing or malformed."""
    if not path.is_file():
        raise PluginError(f"generated results: report {path} is missing")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PluginError(f"generated results: report {path} is malformed: {error}") from error
    if not isinstance(data, dict):
        raise PluginError(f"generated results: report {path} is malformed: not a JSON object")
    return data


def render_results(reports_dir: Path = REPORTS) -> str:
    """The Markdown tables of every report in ``REPORT_FILES`` under ``reports_dir``."""
    out: list[str] = []
    for name, title in REPORT_FILES.items():
        path = Path(reports_dir) / name
        data = load_report(path)
        out.append(f"### {title}\n")
        host = data.get("host") or data.get("hostname")
        source = f"`reports/{name}`, {_provenance(path)}"
        if host:
            source += f", host {fmt(host)}"
        out.append(f"Source: {source}.\n")
        out.append("| key | value |\n| --- | --- |")
        for key, value in _flatten(data):
            out.append(f"| `{key}` | {fmt(value)} |")
        out.append("")
    return "\n".join(out)


def render_cli() -> str:
    """The command table and each command's help, from the registry (no subprocess)."""
    sys.path.insert(0, str(ROOT / "src"))
    from tweetcls.cli import COMMANDS, build_parser

    out = ["| command | what it does | module |", "| --- | --- | --- |"]
    for name, command in COMMANDS.items():
        out.append(f"| `tweetcls {name}` | {command.help} | `{command.module}` |")
    out.append("\n### `tweetcls --help`\n\n```text\n" + build_parser().format_help() + "```\n")
    out.append("Each command's flags: `tweetcls COMMAND --help`.\n")
    return "\n".join(out)


def on_pre_build(config: Any, **kwargs: Any) -> None:
    """Drop the per-build cache."""
    _cache.clear()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    """Replace the generated-section markers of a page."""
    if CLI_MARKER in markdown:
        if "cli" not in _cache:
            _cache["cli"] = render_cli()
        markdown = markdown.replace(CLI_MARKER, _cache["cli"])
    if RESULTS_MARKER in markdown:
        if "results" not in _cache:
            _cache["results"] = render_results()
        markdown = markdown.replace(RESULTS_MARKER, _cache["results"])
    return markdown
