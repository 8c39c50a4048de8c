"""Tables of the benchmark scripts' ``--json`` outputs (``<!-- generated: bench -->``).

``reports/bench/manifest.json`` (written by ``scripts/bench_docs.sh``) lists every benchmark
JSON with the command that wrote it, the host, its CPU model, the load average at the start
and the wall time. Every file it lists is required: missing or malformed, it fails the build
naming the file. The kind of table follows the script named in the command.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from report_tables import REPORTS, fmt, load_report, provenance, render_checked, table

BENCH = REPORTS / "bench"
MANIFEST = "manifest.json"


def _minmax(values: list[float]) -> str:
    """``min-max`` of ``values`` to one decimal."""
    return f"{min(values):.1f}-{max(values):.1f}" if values else "—"


def render_train_overhead(data: dict[str, Any]) -> str:
    """``bench_train_overhead.py``: samples/s per model and mode, ratio to the plain loop."""
    rows = [
        (
            r["model"],
            f"`{r['mode']}`",
            fmt(r["mean_seq_len"], 1),
            fmt(r["samples_per_s_median"], 1),
            _minmax(r["samples_per_s"]),
            fmt(r["ratio"], 3),
            fmt(r.get("paired_ratio"), 3),
        )
        for r in data["rows"]
    ]
    meta = data["meta"]
    note = (
        f"{meta['repeats']} rounds, batch {meta['batch_size']}, {meta['warmup_steps']} untimed "
        f"warm-up steps, torch {meta['torch']} (threads: {meta['torch_threads']}), Lightning "
        f"{meta['lightning']}; ratio: to `plain` (dynamic padding), median over rounds; "
        "paired: median of the per-round ratios.\n\n"
    )
    header = (
        "model",
        "mode",
        "mean seq len",
        "samples/s (median)",
        "samples/s (min-max)",
        "ratio",
        "paired ratio",
    )
    return note + table(header, rows, "llrrrrr")


def render_train_mfu(data: dict[str, Any]) -> str:
    """``bench_train_mfu.py``: throughput, step time and MFU per mode and batch size."""
    rows = []
    for r in data["rows"]:
        if r.get("skipped"):
            rows.append((f"`{r['mode']}`", r["batch_size"], str(r["skipped"]), "", "", "", "", ""))
            continue
        rows.append(
            (
                f"`{r['mode']}`",
                r["batch_size"],
                f"{r['mean_real_len']:.1f} / {r['mean_padded_len']:.1f}",
                fmt(r["samples_per_s"], 1),
                f"{r['tokens_per_s']:,.0f}",
                fmt(r["step_ms"], 2),
                fmt(r["tflops"], 4),
                fmt(r.get("mfu_pct"), 1),
            )
        )
    meta = data["meta"]
    note = (
        f"Device {meta['device_name']}, model {meta['model']} ({meta['weights']}), torch "
        f"{meta['torch']}, {meta['steps']} timed steps per row after {meta['warmup']} warm-up "
        f"steps; token lengths from {meta['lengths']}. MFU needs a known peak (none on "
        "CPU).\n\n"
    )
    header = (
        "mode",
        "batch",
        "seq len (real / padded)",
        "samples/s",
        "tokens/s (padded)",
        "step ms",
        "TFLOPS (padded)",
        "MFU %",
    )
    return note + table(header, rows, "lrrrrrrr")


def render_serve(data: dict[str, Any]) -> str:
    """``bench_serve.py``: closed-loop load, and the minimal-app baseline when it ran."""

    def lead(r: dict[str, Any], rate: str) -> list[Any]:
        """A row's first cells: backend, configuration, clients and its req/s ``rate``."""
        return [f"`{r['backend']}`", r["config"], r["clients"], f"{r[rate]:,.0f}"]

    parts = []
    if runs := data.get("load", []):
        ratio = any(r.get("ratio") is not None for r in runs)
        header = ["backend", "config", "clients", "req/s", "p50 ms", "p99 ms", "errors"]
        header += ["server CPU (cores)", *(["service / reference"] if ratio else [])]
        rows = [
            [
                *lead(r, "req_per_s"),
                fmt(r["p50_ms"], 1),
                fmt(r["p99_ms"], 1),
                r["errors"],
                fmt(r.get("server_cpu"), 2),
                *([fmt(r.get("ratio"), 2)] if ratio else []),
            ]
            for r in runs
        ]
        parts.append("Closed loop, one tweet per request:\n\n" + table(header, rows, "llrrrrrrr"))
    if baseline := data.get("baseline", []):
        target = fmt(data.get("targets", {}).get("ratio_to_minimal"), 2)
        header = ["backend", "config", "clients", "tweetcls req/s", "minimal app req/s"]
        header += ["tweetcls / minimal", f"target ≥ {target}"]
        rows = [
            [
                *lead(r, "service_req_per_s"),
                f"{r['minimal_req_per_s']:,.0f}",
                fmt(r["ratio"], 2),
                "met" if r.get("meets_target") else "not met",
            ]
            for r in baseline
        ]
        title = "Against a minimal FastAPI app (same request model, constant answer):\n\n"
        parts.append(title + table(header, rows, "llrrrrl"))
    settings, machine = data["settings"], data["machine"]
    versions = machine.get("versions", {})
    note = (
        f"Bundle `{settings['model']}`, {settings['tweets']} distinct tweets, "
        f"{fmt(settings['duration'], 1)} s per run after {fmt(settings['warmup'], 1)} s "
        f"warm-up; commit {machine.get('commit')}, onnxruntime {versions.get('onnxruntime')}; "
        "config: `w<workers> <batching> t=<threads per worker>`; batching `requests` is "
        "`--max_batch_tokens 0`.\n\n"
    )
    return note + "\n".join(parts)


#: Script name in a manifest command -> (title, renderer).
RENDERERS: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "bench_train_overhead.py": (
        "Training overhead: Lightning against a plain loop (CPU)",
        render_train_overhead,
    ),
    "bench_train_mfu.py": ("Training throughput and MFU", render_train_mfu),
    "bench_serve.py": ("Serving under load", render_serve),
}


def renderer_for(command: str, path: Path) -> tuple[str, Callable[[dict[str, Any]], str]]:
    """The title and renderer of the script that ``command`` runs."""
    for script, entry in RENDERERS.items():
        if f"scripts/{script}" in command:
            return entry
    raise PluginError(f"generated bench: {path}: no table for the command {command!r}")


def run_line(entry: dict[str, Any]) -> str:
    """When, where and how long: the manifest's record of one run."""
    load = entry.get("load_average_at_start")
    load_text = f", load average at the start {' '.join(f'{x:.2f}' for x in load)}" if load else ""
    return (
        f"Measured {entry['finished']} on host `{entry['host']}`, {entry['cpu']}{load_text}; "
        f"wall time {entry['wall_s']:.0f} s.\n"
    )


def render_entry(name: str, entry: dict[str, Any], bench_dir: Path) -> str:
    """One benchmark's section: title, command, run line, table(s) and source line."""
    path = bench_dir / str(entry.get("file", f"{name}.json"))
    data = load_report(path)
    title, render = renderer_for(entry["command"], path)
    body = render_checked(render, data, path, "generated bench:")
    try:
        run = run_line(entry)
    except (KeyError, TypeError, ValueError) as error:
        raise PluginError(
            f"generated bench: the manifest's entry {name!r} for {path} is malformed: {error}"
        ) from error
    return (
        f"### {title}: `{name}`\n\n```bash\n{entry['command']}\n```\n\n{run}\n"
        f"{body}\n{provenance(path, f'reports/bench/{path.name}')}\n"
    )


def render_bench(bench_dir: Path = BENCH) -> str:
    """Every benchmark the manifest in ``bench_dir`` lists, in its order."""
    manifest_path = Path(bench_dir) / MANIFEST
    manifest = load_report(manifest_path)
    out = []
    for name, entry in manifest.items():
        if not isinstance(entry, dict) or "command" not in entry:
            raise PluginError(f"generated bench: {manifest_path} is malformed at {name!r}")
        out.append(render_entry(name, entry, Path(bench_dir)))
    return "\n".join(out)
