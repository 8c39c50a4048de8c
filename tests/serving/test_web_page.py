"""The web page in a real browser, served by the real command (what the Docker image runs).

``python -m tweetcls serve`` runs in a subprocess on a free port; headless Chromium (Playwright)
classifies a typed tweet (label text and probability bar) and uploads a CSV whose downloaded
predictions are checked row by row. With an API key (``TWEETCLS_API_KEYS``), the page asks for
it, refuses a wrong one with a clear message and classifies once the right one is entered.
"Why?" colours each word by its attribution (``POST /explain``, on a copy of the tiny bundle
marked faithful, or ``$TWEETCLS_SCREENSHOT_BUNDLE``; a screenshot goes to
``$TWEETCLS_SCREENSHOT_DIR`` when set, for the docs) or
says in one line that this model does not explain (marked not faithful). "Wrong label?"
stores a correction (``POST /feedback``) in the request-log database and says so, or says why
not. The page's strict Content-Security-Policy must block nothing it needs.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pandas as pd
import pytest
from helpers.builds import marked
from helpers.servers import ServerProcess

from tweetcls.core.bundle import load_bundle
from tweetcls.monitoring.feedback import read_feedback
from tweetcls.monitoring.requestlog import RequestLog

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason=f"{CHROMIUM} not found: the browser test needs Chromium"
)
TWEET = "Forest fire near La Ronge Sask. Canada"


@contextmanager
def running_server(
    tiny_bundle: Path, tmp_path: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[str, str]]:
    """``(base URL, database URL)`` of a running ``python -m tweetcls serve`` with ``env``."""
    database_url = f"sqlite:///{tmp_path / 'requests.db'}"
    env = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    server = ServerProcess(
        tmp_path / "server.log", env, model=tiny_bundle, database_url=database_url, threads=1
    )
    try:
        server.wait_ready(timeout=90)
        yield server.url, database_url
    finally:
        code = server.process.returncode
        if server.process.poll() is None:
            code = server.terminate(timeout=30)  # killed, and an AssertionError, after that
    output = server.output()
    # SIGTERM: uvicorn drains, runs the lifespan's shutdown, then exits
    assert code in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    for key in (env.get("TWEETCLS_API_KEYS") or "").split(","):
        assert not key or key not in output  # no key in the server's output


@pytest.fixture
def server(tiny_bundle: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``(base URL, database URL)`` of a running ``python -m tweetcls serve``."""
    with running_server(tiny_bundle, tmp_path) as running:
        yield running


def launch(playwright):
    """Headless Debian Chromium."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )


def blocked_by_policy(page) -> list[str]:
    """Console messages of ``page`` that report a Content-Security-Policy violation (filled
    in as the page runs)."""
    messages: list[str] = []
    page.on(
        "console",
        lambda message: (
            messages.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return messages


def test_type_a_tweet_and_upload_a_csv(server, tiny_bundle: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, database_url = server
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    bundle = load_bundle(tiny_bundle)
    direct = httpx.post(f"{base}/predict", json={"text": TWEET, "keyword": "wildfire"}).json()
    upload = tmp_path / "tweets.csv"
    pd.DataFrame(
        {
            "id": [1, 2, 3],
            "text": [TWEET, "I love fruits", "Earthquake! Everyone outside now"],
            "keyword": ["wildfire", "", "earthquake"],
        }
    ).to_csv(upload, index=False)

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(accept_downloads=True)
            blocked = blocked_by_policy(page)
            page.goto(base + "/")
            assert page.title().startswith("tweetcls")

            page.click("#classify")  # nothing typed yet: a message, no request
            assert page.locator("#error").inner_text() == "Type or paste a tweet first."

            page.fill("#tweet-text", TWEET)
            page.fill("#tweet-keyword", "wildfire")
            page.click("#classify")
            page.wait_for_selector("#result:not([hidden])")
            label = page.locator("#result-label").inner_text()
            percent = float(page.locator("#probability-bar").get_attribute("aria-valuenow"))
            width = page.locator("#probability-fill").evaluate("e => e.style.width")
            assert page.locator("#error").is_hidden()

            page.set_input_files("#csv-file", str(upload))
            with page.expect_download() as download_info:
                page.click("#csv-submit")
            download = download_info.value
            saved = tmp_path / "downloaded.csv"
            download.save_as(saved)
            assert download.suggested_filename == "tweets-predictions.csv"
            # locator assertions, not wait_for_function: its string predicate is re-evaluated
            # with eval() while it waits, which the page's CSP (no 'unsafe-eval') refuses
            expect(page.locator("#csv-status")).to_have_text(re.compile(r"^Done"))

            bad = tmp_path / "bad.csv"
            bad.write_text("tweet\nhello\n", encoding="utf-8")
            page.set_input_files("#csv-file", str(bad))
            page.click("#csv-submit")
            page.wait_for_selector("#csv-error:not([hidden])")
            csv_error = page.locator("#csv-error").inner_text()
            assert page.locator("#key-card").is_hidden()  # no keys: never asked for one
            assert blocked == []
            # the policy is enforced (and its violations would be seen): an inline style is not
            with page.expect_console_message(lambda m: "Content Security Policy" in m.text):
                page.evaluate("document.body.setAttribute('style', 'color: red')")
        finally:
            browser.close()

    assert label == ("Disaster" if direct["label"] == 1 else "Not a disaster")
    assert percent == pytest.approx(round(direct["probability"] * 100, 1), abs=0.051)
    assert width == f"{percent:g}%"
    assert "no 'text' column" in csv_error

    rows = pd.read_csv(saved, keep_default_na=False)
    assert rows["id"].tolist() == [1, 2, 3]
    assert rows["text"].tolist()[0] == TWEET
    assert rows["probability"].between(0, 1).all()
    assert rows["label"].tolist() == [int(p >= bundle.threshold) for p in rows["probability"]]
    assert set(rows["model_version"]) == {bundle.version}

    log = RequestLog(database_url)
    try:  # the server writes its log in the background: wait for the five predictions
        deadline = time.monotonic() + 10
        while len(logged := log.read(start)) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        log.close()
    assert len(logged) == 1 + 1 + 3  # the direct call, the typed tweet, the three CSV rows


KEY = "page-key-0123456789abcdef"


def test_the_page_asks_for_the_api_key(tiny_bundle: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    upload = tmp_path / "tweets.csv"
    upload.write_text(f"text\n{TWEET}\n", encoding="utf-8")
    with (
        running_server(tiny_bundle, tmp_path, env={"TWEETCLS_API_KEYS": KEY}) as (base, _),
        sync_playwright() as playwright,
    ):
        assert httpx.post(f"{base}/predict", json={"text": TWEET}).status_code == 401
        browser = launch(playwright)
        try:
            page = browser.new_page(accept_downloads=True)
            blocked = blocked_by_policy(page)
            page.goto(base + "/")
            assert page.locator("#key-card").is_hidden()  # not before a request needs it
            # open (and filled in after the page loads: wait for it)
            expect(page.locator("#model-version")).to_have_text(re.compile(r"^Model "))

            page.fill("#tweet-text", TWEET)
            page.click("#classify")
            page.wait_for_selector("#key-card:not([hidden])")
            asked = page.locator("#key-message").inner_text()
            classify_error = page.locator("#error").inner_text()
            assert page.evaluate("document.activeElement.id") == "api-key"

            page.fill("#api-key", "wrong-key-0123456789abcdef")
            page.click("#key-submit")  # the refused classification runs again with it
            expect(page.locator("#key-message")).to_contain_text("not accepted")
            refused = page.locator("#key-message").inner_text()
            assert page.locator("#key-card").is_visible()
            assert page.evaluate("sessionStorage.getItem('tweetcls.apiKey')") is None

            page.fill("#api-key", KEY)
            page.click("#key-submit")
            page.wait_for_selector("#result:not([hidden])")
            label = page.locator("#result-label").inner_text()
            assert page.locator("#key-card").is_hidden() and page.locator("#error").is_hidden()
            assert page.evaluate("sessionStorage.getItem('tweetcls.apiKey')") == KEY
            assert page.locator("#key-status").is_visible()

            page.reload()  # the tab keeps the key: the upload needs no prompt
            page.set_input_files("#csv-file", str(upload))
            with page.expect_download() as download_info:
                page.click("#csv-submit")
            assert download_info.value.suggested_filename == "tweets-predictions.csv"
            assert page.locator("#key-card").is_hidden()

            page.click("#forget-key")
            assert page.evaluate("sessionStorage.getItem('tweetcls.apiKey')") is None
            assert page.locator("#key-status").is_hidden()
        finally:
            browser.close()

    assert asked == "This service needs an API key: enter it to continue."
    assert classify_error == "Could not classify: an API key is needed"
    assert refused == "The API key was not accepted: enter a valid key."
    assert label in ("Disaster", "Not a disaster")
    assert blocked == []


def screenshot_bundle() -> Path | None:
    """``$TWEETCLS_SCREENSHOT_BUNDLE``: a real bundle to serve for the docs' screenshots (the
    tiny model's words all fall in the neutral bin), e.g. ``runs/pipeline/serving``."""
    path = os.environ.get("TWEETCLS_SCREENSHOT_BUNDLE")
    return Path(path) if path else None


BINS = ["attr-n3", "attr-n2", "attr-n1", "attr-0", "attr-p1", "attr-p2", "attr-p3"]
VALUE = re.compile(
    r"^(?:([+\u2212])(\d+\.\d) points, towards (?:not a )?disaster|0\.0 points, no effect)$"
)


def expected_bin(title: str) -> str:
    """The colour class of a word whose title is ``title`` (edges 2, 10, 25 points)."""
    match = VALUE.match(title)
    assert match, title
    points = float(match[2] or 0)
    strength = sum(points >= edge for edge in (2, 10, 25))
    return "attr-0" if strength == 0 else f"attr-{'p' if match[1] == '+' else 'n'}{strength}"


def test_why_colours_each_word(tiny_bundle: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("TWEETCLS_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    bundle = screenshot_bundle() or marked(tiny_bundle, tmp_path, True)
    with (
        running_server(bundle, tmp_path) as (base, _),
        sync_playwright() as playwright,
    ):
        direct = httpx.post(f"{base}/explain", json={"text": TWEET, "keyword": "wildfire"})
        shares = [-0.3, -0.12, -0.05, 0.001, 0.05, 0.12, 0.3, None]
        every_bin = {
            **direct.json(),
            "words": [{"word": f"w{i}", "attribution": a} for i, a in enumerate(shares)],
        }
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 900})
            blocked = blocked_by_policy(page)
            page.goto(base + "/")
            page.fill("#tweet-text", TWEET)
            page.fill("#tweet-keyword", "wildfire")
            page.click("#classify")
            page.wait_for_selector("#result:not([hidden])")
            assert page.locator("#explanation").is_hidden()  # opt-in: not asked yet
            assert page.get_attribute("#explain", "aria-expanded") == "false"

            page.focus("#explain")
            page.keyboard.press("Enter")  # the keyboard opens it
            page.wait_for_selector("#explanation:not([hidden])")
            words = page.locator("#explanation-words .word")
            shown = words.all_text_contents()
            classes = [words.nth(i).get_attribute("class") for i in range(words.count())]
            titles = [words.nth(i).get_attribute("title") for i in range(words.count())]
            legend = [li.get_attribute("class") for li in page.locator(".legend li").all()]
            assert page.get_attribute("#explain", "aria-expanded") == "true"
            assert page.locator("#explain-error").is_hidden()
            shot = shots / "explanation.png"
            page.screenshot(path=str(shot), full_page=True)

            page.click("#explain")  # hides it again
            expect(page.locator("#explanation")).to_be_hidden()
            assert page.get_attribute("#explain", "aria-expanded") == "false"

            # every bin, and a word past the 64th (the tiny model's words are all near 0)
            page.route("**/explain", lambda route: route.fulfill(json=every_bin))
            page.click("#explain")
            page.wait_for_selector("#explanation:not([hidden])")
            every_class = [
                word.get_attribute("class")
                for word in page.locator("#explanation-words .word").all()
            ]
            page.screenshot(path=str(tmp_path / "every-bin.png"), full_page=True)
            page.click("#explain")
            page.unroute("**/explain")

            # any other failure: one line, and the page goes on working
            page.route(
                "**/explain", lambda route: route.fulfill(status=500, json={"detail": "boom"})
            )
            page.click("#explain")
            expect(page.locator("#explain-error")).to_have_text("Could not explain: boom")
            assert page.locator("#explanation").is_hidden()
            page.click("#classify")
            expect(page.locator("#explain-error")).to_be_hidden()
            assert page.locator("#result").is_visible() and page.locator("#error").is_hidden()
            assert blocked == []
        finally:
            browser.close()

    assert direct.status_code == 200, direct.text
    assert shown == TWEET.split() == [w["word"] for w in direct.json()["words"]]
    assert classes == [f"word attr {expected_bin(title)}" for title in titles]
    for title, word in zip(titles, direct.json()["words"], strict=True):
        match = VALUE.match(title)
        signed = float(match[2] or 0) * (1 if match[1] == "+" else -1)
        assert signed == pytest.approx(word["attribution"] * 100, abs=0.5)
    assert legend == [f"attr {name}" for name in BINS]
    assert every_class == [f"word attr {name}" for name in [*BINS, "attr-none"]]
    assert shot.stat().st_size > 10_000


def test_why_says_when_the_model_does_not_explain(tiny_bundle: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    bundle = marked(tiny_bundle, tmp_path, False)
    with (
        running_server(bundle, tmp_path, env={"TWEETCLS_API_KEYS": KEY}) as (base, _),
        sync_playwright() as playwright,
    ):
        keyless = httpx.post(f"{base}/explain", json={"text": TWEET})
        off = httpx.post(
            f"{base}/explain", json={"text": TWEET}, headers={"Authorization": f"Bearer {KEY}"}
        )
        browser = launch(playwright)
        try:
            page = browser.new_page()
            blocked = blocked_by_policy(page)
            page.goto(base + "/")
            page.evaluate(f"sessionStorage.setItem('tweetcls.apiKey', '{KEY}')")
            page.fill("#tweet-text", TWEET)
            page.click("#classify")
            page.wait_for_selector("#result:not([hidden])")
            page.click("#explain")  # with the key, as /predict: a 404, not a 401
            expect(page.locator("#explain-error")).to_be_visible()
            message = page.locator("#explain-error").inner_text()
            assert page.locator("#key-card").is_hidden()
            assert page.locator("#explanation").is_hidden()
            assert page.locator("#result").is_visible() and page.locator("#error").is_hidden()
            assert blocked == []
        finally:
            browser.close()

    assert keyless.status_code == 401 and off.status_code == 404
    assert message == (
        "No explanation for this model: its word attributions did not pass the faithfulness check."
    )


def test_mark_a_wrong_label(server) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, database_url = server
    note = "a test, not a fire"
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page()
            blocked = blocked_by_policy(page)
            page.goto(base + "/")
            assert page.locator("#feedback-form").is_hidden()  # nothing classified yet
            page.fill("#tweet-text", TWEET)
            with page.expect_response("**/predict") as answer:
                page.click("#classify")
            prediction = answer.value.json()
            page.wait_for_selector("#feedback-form:not([hidden])")
            other = "Not a disaster" if prediction["label"] == 1 else "Disaster"
            expect(page.locator("#feedback-submit")).to_have_text(
                f"Wrong label? Mark it as “{other}”"
            )
            status = page.locator("#feedback-status")
            assert status.inner_text() == ""

            page.fill("#feedback-note", note)
            page.click("#feedback-submit")
            expect(status).to_have_text(f"Thanks: recorded as “{other}” for review.")
            page.click("#feedback-submit")  # the same correction again: nothing changes
            expect(status).to_have_text(f"Already recorded as “{other}”; nothing changed.")
            assert "error" not in (status.get_attribute("class") or "")

            # any other answer (404, 409, 503): the server's message, marked as an error
            page.route(
                "**/feedback",
                lambda route: route.fulfill(status=409, json={"detail": "label: conflict"}),
            )
            page.click("#feedback-submit")
            expect(status).to_have_text("Could not record the correction: label: conflict")
            assert "error" in status.get_attribute("class")
            page.unroute("**/feedback")

            page.click("#classify")  # a new classification: a fresh control
            page.wait_for_selector("#feedback-form:not([hidden])")
            expect(status).to_have_text("")
            assert page.locator("#feedback-note").input_value() == ""
            assert blocked == []
        finally:
            browser.close()

    log = RequestLog(database_url)
    try:
        stored = read_feedback(log.engine)
    finally:
        log.close()
    assert stored["prediction_id"].tolist() == [prediction["prediction_id"]]
    row = stored.iloc[0]
    assert (row["target"], row["predicted_label"]) == (1 - prediction["label"], prediction["label"])
    assert row["note"] == note
