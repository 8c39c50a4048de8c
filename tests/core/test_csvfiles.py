"""The one CSV reader: what spreadsheets export is read, everything else is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.csvfiles import READABLE, TRICKY_TEXTS, UNREADABLE, encode_csv
from hypothesis import given, settings
from hypothesis import strategies as st

from tweetcls.core.csvfiles import (
    CsvFormatError,
    FieldTooLargeError,
    read_csv_bytes,
    read_csv_file,
    sniff_delimiter,
)

ROWS = [["id", "text", "keyword"]] + [
    [str(i), text, "fire" if i % 2 else ""] for i, text in enumerate(TRICKY_TEXTS, start=1)
]


def read(raw: bytes, **options) -> object:
    return read_csv_bytes(raw, required=("text",), optional=("id", "keyword"), **options)


@pytest.mark.parametrize("case", sorted(READABLE))
def test_what_spreadsheets_export_is_read_as_written(case: str) -> None:
    table = read(READABLE[case](ROWS))
    assert table.header == ("id", "text", "keyword")
    assert table.rows == ROWS[1:]
    assert table.column("text") == list(TRICKY_TEXTS)


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_files_are_one_line_naming_the_cause(case: str) -> None:
    raw, message = UNREADABLE[case]
    with pytest.raises(CsvFormatError) as error:
        read(raw)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_lines_count_quoted_line_breaks_and_the_sep_line() -> None:
    table = read(encode_csv(ROWS, delimiter=";", sep_line=True))
    assert table.lines == [3, 4, 5, 7, 8]  # row 3 spans lines 5 and 6
    with pytest.raises(CsvFormatError, match=r"^line 5: 2 fields, but the header has 3$"):
        read(b"sep=,\ntext,id,keyword\na,1,b\n\nc,2\n")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            b"id,tweet_text\n1,fire\n",
            "no 'text' column (columns: 'id', 'tweet_text'); rename 'tweet_text' to 'text'?",
        ),
        (b"Tweet,keyword\nfire,x\n", "no 'text' column (columns: 'Tweet', 'keyword'); rename"),
        (b"id,date\n1,2024\n", "no 'text' column (columns: 'id', 'date')"),
        (
            b"text,keyword,Text\na,b,c\n",
            "header: column 'text' appears 2 times ('text' and 'Text', columns 1, 3)",
        ),
        (b"text\n\xef\xbb\xbfcaf\xc3\xa9\n", None),  # a BOM inside the text is just text
    ],
)
def test_columns_are_matched_without_case_and_near_names_suggested(raw, message) -> None:
    if message is None:
        assert read(raw).rows == [["\ufeffcafé"]]
        return
    with pytest.raises(CsvFormatError) as error:
        read(raw)
    assert str(error.value).startswith(message)


def test_unnamed_columns_are_dropped_when_empty_and_refused_when_strict() -> None:
    index_column = read(b",text\n0,fire\n1,flood\n")  # pandas' to_csv with its index
    assert index_column.header == ("", "text") and index_column.column("text") == ["fire", "flood"]
    trailing = read(b"text,,\nfire,,\n")
    assert trailing.header == ("text",)
    with pytest.raises(CsvFormatError, match=r"unexpected column without a name \(column 1\)"):
        read(b",text\n0,fire\n", strict=True)
    with pytest.raises(CsvFormatError, match=r"^header: unexpected column 'Extra' \(expected "):
        read(b"text,Extra\nfire,x\n", strict=True)


def test_field_too_large_says_where_and_the_limit() -> None:
    with pytest.raises(FieldTooLargeError) as error:
        read(b'text\n"' + b"x" * 140_000)  # an unclosed quote swallows the rest
    assert (error.value.line, error.value.limit) == (2, 131072)


def test_sniffing_picks_the_header_delimiter() -> None:
    assert sniff_delimiter("id;keyword;text") == ";"
    assert sniff_delimiter("id\ttext") == "\t"
    assert sniff_delimiter('"id","text"') == ","
    assert sniff_delimiter("text") == ","  # one column: nothing to sniff


def test_read_csv_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tweets.csv"
    path.write_bytes(b"tweet\nfire\n")
    with pytest.raises(CsvFormatError, match=f"^{path}: no 'text' column"):
        read_csv_file(path, ("text",))
    with pytest.raises(CsvFormatError, match=f"^{tmp_path}: cannot read it"):
        read_csv_file(tmp_path, ("text",))
    path.write_bytes(b"text\n" + b"y" * 200_000 + b"\n")
    with pytest.raises(FieldTooLargeError, match=f"^{path}: line 2: a field longer"):
        read_csv_file(path, ("text",))


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.text(max_size=200).map(str.encode),
        st.text(alphabet=',;\t|"\r\n =sepTtx\ufeff\x00', max_size=80).map(str.encode),
    )
)
def test_any_bytes_are_read_or_refused_with_one_line(raw: bytes) -> None:
    for content in (raw, b"text\n" + raw):
        try:
            table = read(content)
        except CsvFormatError as error:
            assert str(error) and "\n" not in str(error)
        else:
            assert len(table) >= 1 and "text" in table.header
