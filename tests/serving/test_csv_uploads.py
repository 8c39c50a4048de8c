"""``POST /predict/csv`` with files as spreadsheets and other tools save them, and broken ones:
200 with the rows as written, or a 4xx whose ``detail`` names the real cause."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from helpers.csvfiles import READABLE, TRICKY_TEXTS, UNREADABLE, encode_csv

from tweetcls.serving.app import create_app
from tweetcls.serving.settings import ServeSettings

ROWS = [["id", "text", "keyword"]] + [
    [str(10 + i), text, "fire" if i % 2 else ""] for i, text in enumerate(TRICKY_TEXTS)
]
MAX_ROWS = 20
MAX_CHARS = 300


@pytest.fixture(scope="module")
def client(tiny_bundle: Path, tmp_path_factory) -> Iterator[TestClient]:
    """One app on the tiny bundle for every upload of this module."""
    log = tmp_path_factory.mktemp("csv-uploads") / "requests.db"
    settings = ServeSettings(
        model=tiny_bundle,
        database_url=f"sqlite:///{log}",
        drift_interval_s=0,
        threads=1,
        max_csv_rows=MAX_ROWS,
        max_chars=MAX_CHARS,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def upload(client: TestClient, content: bytes) -> httpx.Response:
    return client.post("/predict/csv", files={"file": ("tweets.csv", content, "text/csv")})


def predictions(response: httpx.Response) -> pd.DataFrame:
    assert response.status_code == 200, response.text
    return pd.read_csv(io.BytesIO(response.content), keep_default_na=False, dtype={"id": str})


@pytest.fixture(scope="module")
def plain(client: TestClient) -> pd.DataFrame:
    """The predictions of ``ROWS`` as a plain UTF-8 CSV: what every other form must give."""
    return predictions(upload(client, encode_csv(ROWS)))


@pytest.mark.parametrize("case", sorted(READABLE))
def test_exported_uploads_are_read_as_written(client, plain, case: str) -> None:
    out = predictions(upload(client, READABLE[case](ROWS)))
    assert out["text"].tolist() == list(TRICKY_TEXTS)
    assert out["id"].tolist() == [row[0] for row in ROWS[1:]]
    pd.testing.assert_frame_equal(out, plain)


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_uploads_are_a_422_naming_the_cause(client, case: str) -> None:
    content, message = UNREADABLE[case]
    response = upload(client, content)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("file: ") and message in detail, detail
    assert "\n" not in detail


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (
            b"id,Tweet\n1,fire\n",
            422,
            "file: no 'text' column (columns: 'id', 'Tweet'); rename 'Tweet' to 'text'?",
        ),
        (
            b"text,keyword,TEXT\na,b,c\n",
            422,
            "file: header: column 'text' appears 2 times ('text' and 'TEXT', columns 1, 3)",
        ),
        (
            b'text\n"two\nlines"\n' + b"x" * (MAX_CHARS + 1) + b"\n",
            422,
            f"file: text longer than {MAX_CHARS} characters on line(s) 4",
        ),
        (
            b"text,keyword\nfire," + b"k" * 101 + b"\n",
            422,
            "file: keyword longer than 100 characters on line(s) 2",
        ),
        (
            b"text\n" + b"x" * 200_000 + b"\n",
            422,
            "file: line 2: a field longer than 131072 characters (a very long value, or a quote "
            f"that is never closed); texts may have at most {MAX_CHARS} characters",
        ),
        (
            b"text\n" + b"fire\n" * (MAX_ROWS + 1),
            413,
            f"file: {MAX_ROWS + 1} rows, more than the limit of {MAX_ROWS}",
        ),
    ],
    ids=["near name", "repeated column", "long text", "long keyword", "200 KB", "too many"],
)
def test_unusable_uploads_are_a_4xx_naming_lines(client, content, status, message) -> None:
    response = upload(client, content)
    assert response.status_code == status, response.text
    assert response.json()["detail"] == message


def test_other_columns_are_ignored(client, plain) -> None:
    """A pandas ``to_csv`` with its index (a column without a name) and an extra column."""
    frame = pd.DataFrame(ROWS[1:], columns=ROWS[0]).assign(Source="web")
    out = predictions(upload(client, frame.to_csv().encode()))
    pd.testing.assert_frame_equal(out, plain)
