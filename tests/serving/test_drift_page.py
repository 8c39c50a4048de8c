"""``GET /drift`` in a real browser: the pictures of the HTML report, served by the real command.

``python -m tweetcls serve`` (texts logged, a low ``drift_min_samples``) answers a batch of
training tweets; headless Chromium then opens ``/drift`` (its ``Accept: text/html`` gets the
HTML report) and finds one SVG per tested feature, reference and live bars in each histogram,
the positive rate over time, each verdict beside its picture, text alternatives and axis
labels, and no Content-Security-Policy violation. The full-page screenshot goes to
``$TWEETCLS_SCREENSHOT_DIR`` when set (for the docs, served from
``$TWEETCLS_SCREENSHOT_BUNDLE`` when that is set too), else to the test's ``tmp_path``.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pandas as pd
import pytest
from test_web_page import CHROMIUM, blocked_by_policy, launch, running_server, screenshot_bundle

from tweetcls.serving.headers import DRIFT_CSP

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason=f"{CHROMIUM} not found: the browser test needs Chromium"
)
#: Tweets sent before the report is opened.
TWEETS = 60


def test_drift_page_shows_histograms_rates_and_verdicts(
    tiny_bundle: Path, raw_dir: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    rows = pd.read_csv(raw_dir / "train.csv", keep_default_na=False).sample(TWEETS, random_state=0)
    items = [{"text": t, "keyword": k or None} for t, k in rows[["text", "keyword"]].to_numpy()]
    shots = Path(os.environ.get("TWEETCLS_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    env = {"TWEETCLS_LOG_TEXT": "true", "TWEETCLS_DRIFT_MIN_SAMPLES": "20"}
    with (
        running_server(screenshot_bundle() or tiny_bundle, tmp_path, env=env) as (base, _),
        sync_playwright() as playwright,
    ):
        for start in range(0, TWEETS, 20):  # a few requests: more than one moment logged
            answer = httpx.post(f"{base}/predict", json={"items": items[start : start + 20]})
            assert answer.status_code == 200, answer.text
        report = httpx.get(f"{base}/drift", timeout=30).json()
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            blocked = blocked_by_policy(page)
            response = page.goto(base + "/drift")
            assert response.headers["content-type"].startswith("text/html")
            assert response.headers["content-security-policy"] == DRIFT_CSP
            assert page.title() == "tweetcls drift report"
            charts = {}
            for name in (f["name"] for f in report["features"] if f["status"] == "ok"):
                section = page.locator(f"#feature-{name}")
                svg = section.locator("svg.chart")
                verdict = section.locator(".verdict-box .tag").inner_text()
                chart_box, verdict_box = svg.bounding_box(), section.locator("dl").bounding_box()
                charts[name] = {
                    "verdict": verdict,
                    "role": svg.get_attribute("role"),
                    "labels": [
                        page.locator(f"[id='{i}']").evaluate("e => e.tagName")
                        for i in svg.get_attribute("aria-labelledby").split()
                    ],
                    "texts": svg.locator("text").all_text_contents(),
                    "beside": verdict_box["x"] >= chart_box["x"] + chart_box["width"]
                    and verdict_box["y"] < chart_box["y"] + chart_box["height"],
                    "reference": [
                        float(h)
                        for h in svg.locator("rect.bar.reference").evaluate_all(
                            "bars => bars.map(b => b.getAttribute('height'))"
                        )
                    ],
                    "live": [
                        float(h)
                        for h in svg.locator("rect.bar.live").evaluate_all(
                            "bars => bars.map(b => b.getAttribute('height'))"
                        )
                    ],
                    "points": svg.locator("circle.point.live").count(),
                    "reference_line": svg.locator("line.reference").count(),
                }
            assert page.locator("svg.chart").count() == len(charts)
            page.screenshot(path=shots / "drift-page.png", full_page=True)
            assert blocked == []
            # the policy is enforced (and its violations would be seen): another origin is not
            with page.expect_console_message(lambda m: "Content Security Policy" in m.text):
                add_image = "src => document.body.append(Object.assign(new Image(), {src}))"
                page.evaluate(add_image, "http://x.invalid/p.png")
        finally:
            browser.close()

    assert report["status"] == "ok" and report["traffic_samples"] == TWEETS
    assert "histograms" not in report  # the pictures are the HTML report's only
    tested = {f["name"]: f for f in report["features"] if f["status"] == "ok"}
    assert {"text_length", "token_count", "keyword", "positive_rate", "words"} <= set(tested)
    for name, chart in charts.items():
        feature = tested[name]
        assert chart["verdict"] == ("drift" if feature["drifted"] else "no drift"), name
        assert chart["beside"], name
        assert chart["role"] == "img" and chart["labels"] == ["title", "desc"], name
        if name == "positive_rate":
            assert chart["points"] >= 1 and chart["reference_line"] == 1
            assert {"positive rate", "time (UTC)"} <= set(chart["texts"])
        else:  # both series drawn over the same bins, some of each with a height
            assert len(chart["reference"]) == len(chart["live"]) >= 2, name
            assert max(chart["reference"]) > 0 and max(chart["live"]) > 0, name
            assert {"share of rows", "share of words"} & set(chart["texts"]), name
    assert (shots / "drift-page.png").stat().st_size > 10_000
