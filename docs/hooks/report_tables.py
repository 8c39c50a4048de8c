"""Tables of the pipeline's JSON reports in ``reports/`` (``<!-- generated: results -->``).

One renderer per report, each reading the keys its command writes; the source line under each
table gives the file and when its numbers were written (:func:`provenance`). A report that is
missing, is not a JSON object or lacks a key its table needs raises :class:`PluginError` naming
the file.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from scipy import stats

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports"

#: Export backends in the order the export table lists them (any other one after them).
BACKEND_ORDER = ("pytorch", "onnx", "onnx-int8")
#: What a renderer raises on a report that lacks a key or holds a value of the wrong kind.
MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError)


def fmt(value: Any, digits: int = 4) -> str:
    """Format one value as the tables show it (floats to ``digits`` places)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    if value is None:
        return "—"
    return str(value).replace("|", "\\|").replace("\n", " ")


def interval(low: float, high: float, digits: int = 4) -> str:
    """``[low, high]`` with both ends formatted."""
    return f"[{fmt(low, digits)}, {fmt(high, digits)}]"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "") -> str:
    """A Markdown table; ``align`` holds one ``l`` or ``r`` per column (default: left)."""
    rule = ["---:" if (align[i : i + 1] == "r") else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


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


def git(*args: str) -> str:
    """The output of ``git ARGS`` in the repository, or ``""`` when git is not there."""
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance(path: Path, label: str) -> str:
    """The source line of a table: file, and when its numbers were written.

    A file as committed is dated by the commit that wrote it (a checkout's modification time
    says when it was checked out, not measured); a changed or new one by its modification time.
    """
    commit = git("log", "-1", "--format=%h %cs", "--", str(path))
    if commit and not git("status", "--porcelain", "--", str(path)):
        return f"Source: `{label}`, as committed in {commit}."
    mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    state = f"changed since its last commit {commit}" if commit else "not committed"
    return f"Source: `{label}`, written {mtime:%Y-%m-%d %H:%M} UTC ({state})."


def mean_ci(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean of ``values`` and its 95% t interval (the mean itself twice for one value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, mean, mean
    half = float(stats.t.ppf(0.975, len(values) - 1) * stats.sem(values))
    return mean, mean - half, mean + half


def ci_of(value: Any) -> str:
    """An interval given as ``[low, high]`` or ``{"low", "high"}``; ``""`` if absent."""
    if isinstance(value, dict) and {"low", "high"} <= value.keys():
        return interval(value["low"], value["high"])
    if isinstance(value, list) and len(value) == 2:
        return interval(value[0], value[1])
    return ""


def render_metrics(data: dict[str, Any]) -> str:
    """Test metrics of the pipeline model, with the F1 interval."""
    threshold = fmt(data["threshold"], 2)
    rows = [
        (f"**F1** at the decision threshold {threshold}", f"**{fmt(data['f1'])}**"),
        ("95% bootstrap interval of F1", ci_of(data.get("f1_ci"))),
        ("precision", fmt(data["precision"])),
        ("recall", fmt(data["recall"])),
        ("accuracy", fmt(data["accuracy"])),
        ("AUROC", fmt(data["auroc"])),
        ("average precision", fmt(data.get("average_precision"))),
        ("expected calibration error", fmt(data.get("calibration_error"))),
        ("cross-entropy loss", fmt(data.get("loss"))),
        (
            "F1 at the in-sample tuned threshold "
            f"{fmt(data.get('threshold_tuned'), 3)} (diagnostic: tuned on the same tweets)",
            fmt(data.get("f1_tuned")),
        ),
    ]
    note = f"{data['samples']} tweets: {fmt(data.get('evaluated_on', ''))}.\n\n"
    return note + table(("metric", "value"), rows, "lr")


def render_export(data: dict[str, Any]) -> str:
    """F1 and parity of each exported backend against PyTorch, with file sizes."""
    backends: dict[str, dict[str, Any]] = data["backends"]
    sizes: dict[str, float] = data.get("size_mb", {})
    order = sorted(
        backends,
        key=lambda name: BACKEND_ORDER.index(name) if name in BACKEND_ORDER else len(BACKEND_ORDER),
    )
    rows = [
        (
            f"`{name}`",
            fmt(b["f1"]),
            ci_of(b.get("f1_ci")),
            fmt(b["precision"]),
            fmt(b["recall"]),
            fmt(b["accuracy"]),
            fmt(b["agreement"]),
            fmt(b["max_abs_prob_diff"], 6),
            fmt(sizes.get(name), 1),
        )
        for name, b in ((name, backends[name]) for name in order)
    ]
    header = (
        "backend",
        "F1",
        "F1 95% CI",
        "precision",
        "recall",
        "accuracy",
        "label agreement with PyTorch",
        "max probability difference",
        "size (MB)",
    )
    quant = data.get("quantization", {})
    drop = data.get("int8_f1_drop")
    note = (
        f"Bundle `{data.get('bundle')}` (version `{data.get('version')}`), {data['samples']} "
        f"validation tweets at threshold {fmt(data.get('threshold'), 2)}, ONNX opset "
        f"{data.get('onnx_opset')}. int8 F1 drop against PyTorch: {fmt(drop)} (guard: at most "
        f"{fmt(data.get('max_f1_drop'), 3)}). Quantization: {quant.get('weight_type')} weights "
        f"of {', '.join(quant.get('op_types_to_quantize', []))}, per channel "
        f"{fmt(quant.get('per_channel'))}; {len(quant.get('fp32_nodes', []))} MatMuls fed by "
        f"{', '.join(quant.get('fp32_matmuls_fed_by', [])) or '—'} kept in fp32.\n\n"
    )
    return (
        table(header, rows, "lrlrrrrrr")
        + "\n"
        + note
        + render_calibration(data)
        + render_faithfulness(data)
    )


def render_faithfulness(data: dict[str, Any]) -> str:
    """The faithfulness curves of the word attributions (empty for a report without them)."""
    check = data.get("faithfulness")
    if not check:
        return ""
    rows = [
        (
            row["k"],
            row["tweets"],
            fmt(row["drop_top"]),
            fmt(row["drop_random"]),
            fmt(row["gap"]),
            ci_of(row["gap_ci"]),
        )
        for row in check["curves"]
    ]
    header = (
        "k words left out",
        "tweets",
        "drop: top-attributed",
        "drop: random",
        "gap",
        "gap 95% CI",
    )
    verdict = "faithful: `/explain` serves them" if check["faithful"] else "not faithful: off"
    note = (
        f"Word attributions ({check['method']}, {check['backend']}, {check['samples']} "
        f"validation tweets): how much the predicted label's probability drops when the k words "
        f"that most support it are left out, against k random words; {verdict}.\n\n"
    )
    return note + table(header, rows, "rrrrrl") + "\n"


def render_calibration(data: dict[str, Any]) -> str:
    """The calibration export fitted and the reliability of the probabilities before and after
    it (empty for a report without calibration)."""
    cal = data.get("calibration")
    if not cal:
        return ""
    before = {tuple(row["bin"]): row for row in cal["reliability_before"]}
    after = {tuple(row["bin"]): row for row in cal["reliability_after"]}
    rows = []
    for edges in sorted(set(before) | set(after)):
        cells: list[Any] = [f"{edges[0]:.1f} to {edges[1]:.1f}"]
        for side in (before, after):
            row = side.get(edges)
            cells += (
                [row["tweets"], fmt(row["mean_probability"], 3), fmt(row["disaster_share"], 3)]
                if row
                else ["0", "—", "—"]
            )
        rows.append(cells)
    header = (
        "probability bin",
        "tweets before",
        "mean probability before",
        "disaster share before",
        "tweets after",
        "mean probability after",
        "disaster share after",
    )
    low, high = cal["ece_after_range"]
    note = (
        f"Calibration ({cal['method']}, fitted on the {cal['samples']} validation tweets): "
        f"temperature {fmt(cal['temperature'], 3)}, bias {fmt(cal['bias'], 3)}; expected "
        f"calibration error (10 bins) {fmt(cal['ece_before'])} before, {fmt(cal['ece_after'])} "
        f"after (cross-fitted: 5-fold, 5 seeds, range {fmt(low)} to {fmt(high)}; "
        f"{fmt(cal['ece_after_in_sample'])} in sample; temperature alone "
        f"{fmt(cal['ece_temperature_only'])}); perfectly calibrated probabilities would show "
        f"{fmt(cal['ece_sampling_floor'])} on as many tweets (sampling noise). "
        "Reliability before and after (after: one cross-fitted run):\n\n"
    )
    return note + table(header, rows, "lrrrrrr") + "\n"


def render_kfold(data: dict[str, Any]) -> str:
    """Per-fold F1, the folds' mean with its interval, and the out-of-fold and ensemble F1."""
    folds: list[dict[str, Any]] = data["folds"]
    rows: list[tuple[Any, ...]] = [
        (
            f["fold"],
            fmt(f["oof_f1"]),
            fmt(f["heldout_f1"]),
            fmt(f.get("heldout_f1_tuned")),
            fmt(f.get("threshold"), 3),
        )
        for f in folds
    ]
    oof = mean_ci([f["oof_f1"] for f in folds])
    held = mean_ci([f["heldout_f1"] for f in folds])
    rows.append(
        (
            "**mean** [95% t interval]",
            f"{fmt(oof[0])} {interval(oof[1], oof[2])}",
            f"{fmt(held[0])} {interval(held[1], held[2])}",
            "",
            "",
        )
    )
    per_fold = table(
        (
            "fold",
            "F1 on its own fold",
            "F1 on held-out val.csv",
            "tuned F1 (held-out)",
            "fold threshold",
        ),
        rows,
        "rrrrr",
    )
    summary = [
        (
            "out-of-fold F1 at 0.5 (every tweet of `train.csv`, by the fold that left it out)",
            fmt(data["oof_f1"]),
        ),
        (
            f"out-of-fold F1 at the out-of-fold threshold {fmt(data.get('oof_threshold'), 3)}",
            fmt(data.get("oof_f1_tuned")),
        ),
        (
            f"fold models alone on the {data['heldout_samples']} held-out tweets: mean",
            fmt(data["single_heldout_f1_mean"]),
        ),
        (
            "**ensemble** (mean probability of the folds) on the held-out tweets",
            f"**{fmt(data['ensemble_heldout_f1'])}** {ci_of(data.get('ensemble_heldout_f1_ci'))}",
        ),
        (
            "ensemble at the out-of-fold threshold",
            fmt(data.get("ensemble_heldout_f1_oof_threshold")),
        ),
    ]
    return f"{data['num_folds']} folds.\n\n" + per_fold + "\n" + table(("", "F1"), summary, "lr")


def render_ensemble(data: dict[str, Any]) -> str:
    """Members and combiners side by side: F1 with intervals, AUROC, gains, stack weights."""
    weights: dict[str, float] = data.get("stack_weights_normalised", {})
    rows = [
        (
            f"`{m['name']}`" + (" (best member)" if m["name"] == data.get("best_member") else ""),
            "member",
            fmt(m["f1"]["estimate"]),
            ci_of(m["f1"]),
            fmt(m.get("auroc")),
            fmt(m.get("threshold"), 2),
            "—",
            fmt(weights.get(m["name"]), 3),
        )
        for m in data["members"]
    ]
    for name, c in data.get("combiners", {}).items():
        gain = c.get("gain_over_best_member", {})
        chosen = " **(chosen)**" if name == data.get("method") else ""
        rows.append(
            (
                f"`{name}`{chosen}",
                "combiner",
                fmt(c["f1"]["estimate"]),
                ci_of(c["f1"]),
                fmt(c.get("auroc")),
                fmt(c.get("threshold"), 2),
                f"{fmt(gain.get('estimate'))} {ci_of(gain)}" if gain else "—",
                "",
            )
        )
    header = (
        "model",
        "kind",
        "F1",
        "F1 95% CI",
        "AUROC",
        "threshold",
        "F1 gain over the best member [95% CI, paired]",
        "stack weight (normalised)",
    )
    sources = ", ".join(f"`{k}` = `{v}`" for k, v in data.get("sources", {}).items())
    note = f"{data['samples']} tweets: {fmt(data.get('evaluated_on', ''))}. Members: {sources}.\n\n"
    return note + table(header, rows, "llrlrrlr")


def _counts(name: str, split: dict[str, Any]) -> tuple[Any, ...]:
    """One row of the split table."""
    rate = split.get("positive_rate")
    return (
        name,
        f"{split['rows']:,}",
        fmt(split.get("positive")),
        fmt(rate) if rate is not None else "—",
    )


def render_data(data: dict[str, Any]) -> str:
    """Row counts per split, the de-duplication counts and the token lengths."""
    raw = data["raw"]
    split = data.get("split", {})
    rows = [
        _counts("raw `train.csv`", raw["train"]),
        _counts(
            f"train (after de-duplication, {1 - split.get('val_fraction', 0):.0%})", data["train"]
        ),
        _counts(f"val (held out, {split.get('val_fraction', 0):.0%})", data["val"]),
        _counts("test (Kaggle, unlabelled)", data["test"]),
    ]
    splits = table(("split", "rows", "positive", "positive rate"), rows, "lrrr")
    dedup = data.get("deduplication", {})
    dedup_rows = [(key.replace("_", " "), fmt(value)) for key, value in dedup.items()]
    lengths = data.get("token_length", {})
    train_lengths = lengths.get("train", {})
    tokenizer = "/".join(Path(str(lengths.get("tokenizer", ""))).parts[-2:])
    length_table = table(
        ("split", *train_lengths), [("train", *train_lengths.values())], "l" + "r" * 9
    )
    return (
        f"Split seed {split.get('seed')}.\n\n"
        + splits
        + "\n"
        + table(("de-duplication", "count"), dedup_rows, "lr")
        + f"\nToken lengths (tokenizer `{tokenizer}`), percentiles:\n\n"
        + length_table
    )


def _gain(comparison: dict[str, Any] | None) -> str:
    if comparison is None:
        return "(reference)"
    gain = comparison["gain"]
    text = f"{gain['estimate']:+.4f} [{gain['low']:+.4f}, {gain['high']:+.4f}]"
    return f"**{text}**" if gain["low"] > 0 or gain["high"] < 0 else text


def _compared(comparison: dict[str, Any] | None) -> str:
    if comparison is None:
        return "—"
    changed = comparison.get("label_changes", 0)
    return fmt(comparison["shared"]) + (
        f" ({fmt(changed)} relabelled, left out)" if changed else ""
    )


def _calibration(cal: dict[str, Any] | None) -> str:
    """An ablation row's expected calibration error before and after (cross-fitted)."""
    return "—" if cal is None else f"{fmt(cal['ece_before'])} → {fmt(cal['ece_after'])}"


def render_ablation(data: dict[str, Any]) -> str:
    """Recipes in the order they were built up: out-of-fold F1 with its interval, the paired
    gain over the reference and over the recipe before (bold: the interval excludes 0), the
    expected calibration error of the out-of-fold probabilities before and after calibration
    (cross-fitted), the fit time of all folds, and each run's command."""
    rows = [
        (
            fmt(row["description"]),
            fmt(row["oof_samples"]),
            f"{fmt(row['oof_f1'])} {ci_of(row['oof_f1_ci'])}",
            _gain(row.get("vs_reference")),
            "—" if i > 0 and "vs_previous" not in row else _gain(row.get("vs_previous")),
            _compared(row.get("vs_reference")),
            _calibration(row.get("calibration")),
            "—" if row.get("fit_seconds") is None else f"{row['fit_seconds'] / 60:.0f} min",
        )
        for i, row in enumerate(data["rows"])
    ]
    header = (
        "recipe",
        "tweets",
        "out-of-fold F1 [95% CI]",
        f"gain over {data['reference']} [95% CI]",
        "gain over the row above",
        "tweets compared",
        "ECE before → after calibration",
        "fit time",
    )
    commands = "\n".join(
        f"- {fmt(row['variant'])}: `{row['command']}`" for row in data["rows"] if row.get("command")
    )
    return table(header, rows, "lrrrrrrr") + "\nCommands:\n\n" + commands + "\n"


#: The reports the results page renders: file name -> (title, renderer).
REPORT_FILES: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "metrics.json": ("Test metrics of the pipeline model (`dvc repro`)", render_metrics),
    "export.json": ("Export: PyTorch, ONNX fp32 and int8 (`tweetcls export`)", render_export),
    "ablation.json": (
        "Recipe ablation: MiniLM, 5-fold out-of-fold (`tweetcls ablation`)",
        render_ablation,
    ),
    "learning_curve.json": (
        "Learning curve: MiniLM, 5-fold out-of-fold, shares of the training folds "
        "(`tweetcls ablation`)",
        render_ablation,
    ),
    "levers.json": (
        "Single levers against the default recipe: 5-fold out-of-fold (`tweetcls ablation`)",
        render_ablation,
    ),
    "seeds.json": (
        "Two seeds of the default recipe: MiniLM, 5-fold out-of-fold (`tweetcls ablation`)",
        render_ablation,
    ),
    "head.json": (
        "The recipe of 2026-12-04 against the one before, each fold scored by its final "
        "weights: MiniLM, 5-fold out-of-fold (`tweetcls ablation`)",
        render_ablation,
    ),
    "optimisation.json": (
        "The optimisation levers one at a time, each fold scored by its final weights: MiniLM, "
        "5-fold out-of-fold (`tweetcls ablation`)",
        render_ablation,
    ),
    "averaging.json": (
        "Weight averaging on top of the default recipe: MiniLM, 5-fold out-of-fold "
        "(`tweetcls ablation`)",
        render_ablation,
    ),
    "default_settings.json": (
        "Learning rate, batch size, gradient clipping and layer decay against the default "
        "recipe: MiniLM, 5-fold out-of-fold (`tweetcls ablation`)",
        render_ablation,
    ),
    "kfold.json": ("Cross-validation: MiniLM (`tweetcls kfold`)", render_kfold),
    "kfold_mpnet.json": ("Cross-validation: MPNet (`tweetcls kfold`)", render_kfold),
    "ensemble.json": ("Ensemble (`tweetcls ensemble`)", render_ensemble),
    "data.json": ("Data (`tweetcls preprocess`)", render_data),
}


def render_checked(
    render: Callable[[dict[str, Any]], str], data: dict[str, Any], path: Path, what: str
) -> str:
    """``render(data)``; a key or value it cannot use raises :class:`PluginError` naming
    ``path`` (``what``: the message's prefix, e.g. ``generated results: report``)."""
    try:
        return render(data)
    except MALFORMED as error:
        raise PluginError(f"{what} {path} is malformed: {type(error).__name__}: {error}") from error


def render_report(path: Path, title: str, render: Callable[[dict[str, Any]], str]) -> str:
    """One report's section: title, table(s) and source line."""
    body = render_checked(render, load_report(path), path, "generated results: report")
    return f"### {title}\n\n{body}\n{provenance(path, f'reports/{path.name}')}\n"


def render_results(reports_dir: Path = REPORTS) -> str:
    """The Markdown sections of every report in :data:`REPORT_FILES` under ``reports_dir``."""
    return "\n".join(
        render_report(Path(reports_dir) / name, title, render)
        for name, (title, render) in REPORT_FILES.items()
    )
