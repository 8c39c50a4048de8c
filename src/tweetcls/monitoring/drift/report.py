"""The result of a drift comparison: per-feature verdicts, JSON, a summary line and HTML."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

from tweetcls.monitoring.drift.pictures import Histogram, RateSeries


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's test result.

    Args:
        name: feature name (``text_length``, ``keyword``, ...).
        test: ``ks``, ``chi2``, ``binomial`` or ``jensen_shannon``; ``none`` when skipped.
        status: ``ok`` (tested) or ``skipped`` (``detail`` says why).
        statistic: the test statistic.
        p_value: its p-value.
        effect: the effect size (see :mod:`tweetcls.monitoring.drift`).
        alpha: the p-value threshold.
        min_effect: the effect-size threshold.
        drifted: ``p_value < alpha and effect >= min_effect``.
        reference: summary of the reference side, for the report.
        current: summary of the traffic side, for the report.
        detail: one line for the report.
    """

    name: str
    test: str
    status: str
    statistic: float | None = None
    p_value: float | None = None
    effect: float | None = None
    alpha: float | None = None
    min_effect: float | None = None
    drifted: bool = False
    reference: dict[str, Any] = field(default_factory=dict)
    current: dict[str, Any] = field(default_factory=dict)
    detail: str = ""


@dataclass(frozen=True)
class DriftReport:
    """The result of :func:`~tweetcls.monitoring.drift.compare`.

    Args:
        status: ``ok`` or ``insufficient_data`` (then ``drift_detected`` is False).
        drift_detected: share of drifted features >= ``share_threshold``.
        share: drifted features / tested features (0 when nothing was tested).
        share_threshold: the share at which drift is detected.
        traffic_samples: logged predictions in the window.
        reference_samples: rows the reference was built from.
        min_samples: the minimum of logged predictions for a verdict.
        since: start of the window (UTC), if known.
        until: end of the window (UTC), if known.
        features: per-feature results.
        created_at: when the report was made (UTC).
        histograms: reference and live histogram of each tested feature but the positive
            rate (the HTML report's pictures; not in :meth:`to_dict`).
        rate_series: the positive rate over the window's traffic (HTML only too).
    """

    status: str
    drift_detected: bool
    share: float
    share_threshold: float
    traffic_samples: int
    reference_samples: int
    min_samples: int
    since: datetime | None
    until: datetime | None
    features: tuple[FeatureDrift, ...]
    created_at: datetime
    histograms: tuple[Histogram, ...] = ()
    rate_series: RateSeries | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (datetimes as ISO 8601 strings), without the pictures' data."""
        data = asdict(self)
        del data["histograms"], data["rate_series"]
        for key in ("since", "until", "created_at"):
            value = data[key]
            data[key] = None if value is None else value.isoformat()
        data["features"] = [asdict(f) for f in self.features]
        return data

    def summary(self) -> str:
        """One line: the verdict, the share and the drifted features."""
        if self.status != "ok":
            return (
                f"insufficient data: {self.traffic_samples} logged predictions "
                f"(need {self.min_samples}); no drift verdict"
            )
        drifted = [f.name for f in self.features if f.drifted]
        verdict = "DRIFT DETECTED" if self.drift_detected else "no drift"
        tested = sum(f.status == "ok" for f in self.features)
        return (
            f"{verdict}: {len(drifted)}/{tested} features drifted (share {self.share:.2f}, "
            f"threshold {self.share_threshold:.2f}) over {self.traffic_samples} predictions"
            + (f"; drifted: {', '.join(drifted)}" if drifted else "")
        )

    def to_html(self) -> str:
        """A self-contained HTML report (inline CSS and SVG pictures, no scripts or external
        resources)."""
        from jinja2 import Environment, FunctionLoader, select_autoescape

        templates = resources.files("tweetcls.serving").joinpath("templates")
        env = Environment(
            loader=FunctionLoader(lambda name: templates.joinpath(name).read_text("utf-8")),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )
        env.filters["num"] = _format_number
        return env.get_template("drift.html.j2").render(
            report=self,
            summary=self.summary(),
            histograms={h.feature: h for h in self.histograms},
        )


def _format_number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.4g}" if abs(value) >= 1e-3 else f"{value:.2e}"
