"""MkDocs hook: pages generated from the command registry and from the JSON reports.

Markers replaced in a page's Markdown:

- ``<!-- generated: cli -->``: every command of ``tweetcls.core.commands.COMMANDS`` with its
  ``--help``, captured in-process (see :mod:`cli_help`).
- ``<!-- generated: results -->``: tables of the pipeline's reports in ``reports/``.
- ``<!-- generated: bench -->``: tables of the benchmark scripts' ``--json`` outputs in
  ``reports/bench/``, listed with their commands in ``reports/bench/manifest.json``.

Every report named in :data:`REPORT_FILES` and every file the manifest lists is required: a
missing or malformed one fails the build with a :class:`PluginError` that names the file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_tables import render_bench
from cli_help import render_cli
from report_tables import REPORT_FILES, fmt, load_report, render_results

__all__ = ["REPORT_FILES", "fmt", "load_report", "render_bench", "render_cli", "render_results"]

MARKERS = {
    "<!-- generated: cli -->": render_cli,
    "<!-- generated: results -->": render_results,
    "<!-- generated: bench -->": render_bench,
}

_cache: dict[str, str] = {}


def on_pre_build(config: Any, **kwargs: Any) -> None:
    """Drop the per-build cache."""
    _cache.clear()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    """Replace the generated-section markers of a page."""
    for marker, render in MARKERS.items():
        if marker in markdown:
            if marker not in _cache:
                _cache[marker] = render()
            markdown = markdown.replace(marker, _cache[marker])
    return markdown
