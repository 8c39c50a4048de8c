"""Unusual and malformed CSV files, built in memory: what spreadsheets and other tools export.

Every CSV input (preprocess, ``POST /predict/csv``, the benchmark's tweets) reads files through
``tweetcls.core.csvfiles``; tests/core/test_csvfiles.py checks the reader on these files,
tests/data/test_preprocess_inputs.py and tests/serving/test_csv_uploads.py the two commands.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import zipfile
from collections.abc import Callable, Sequence

#: Tweets that need quoting or are not ASCII: delimiters, quotes, a line break, accents, emoji.
TRICKY_TEXTS = (
    "Forest fire near La Ronge, Sask. Canada",
    'He said "evacuate"; we ran',
    "Flood\nwarning tonight",
    "Café près de l'école en feu \U0001f525",
    "\u201cCurly quotes\u201d and a tab\there",
)


def encode_csv(
    rows: Sequence[Sequence[object]],
    *,
    delimiter: str = ",",
    newline: str = "\n",
    encoding: str = "utf-8",
    sep_line: bool = False,
    quoting: int = csv.QUOTE_MINIMAL,
) -> bytes:
    """``rows`` (the header first) written by :mod:`csv` as bytes.

    Args:
        rows: The header, then the data rows.
        delimiter: Field delimiter.
        newline: Line ending (``"\\r"`` for old-Mac files).
        encoding: A codec; ``utf-16-le``/``utf-16-be`` get their byte-order mark, as Excel's
            "Unicode text" writes them.
        sep_line: Start with Excel's ``sep=<delimiter>`` line.
        quoting: A :mod:`csv` quoting mode (Python 3.11's minimal quoting leaves a ``\n`` in a
            field unquoted when lines end in ``\r``).
    """
    out = io.StringIO(newline="")
    if sep_line:
        out.write(f"sep={delimiter}{newline}")
    csv.writer(out, delimiter=delimiter, lineterminator=newline, quoting=quoting).writerows(rows)
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}.get(encoding, b"")
    return bom + out.getvalue().encode(encoding)


def zip_bytes(*members: str) -> bytes:
    """A ZIP archive with one small member per name (``xl/workbook.xml``: an xlsx)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in members:
            archive.writestr(name, "<x/>")
    return buffer.getvalue()


#: How a spreadsheet program or another tool may save a table: each must be read as it was.
READABLE: dict[str, Callable[[Sequence[Sequence[object]]], bytes]] = {
    "utf-8 with a BOM (Excel 'CSV UTF-8'), CRLF": lambda rows: encode_csv(
        rows, encoding="utf-8-sig", newline="\r\n"
    ),
    "utf-16 LE with a BOM, tabs (Excel 'Unicode text')": lambda rows: encode_csv(
        rows, encoding="utf-16-le", delimiter="\t", newline="\r\n"
    ),
    "utf-16 BE with a BOM, tabs": lambda rows: encode_csv(
        rows, encoding="utf-16-be", delimiter="\t"
    ),
    "semicolons (European Excel)": lambda rows: encode_csv(rows, delimiter=";", newline="\r\n"),
    "tabs": lambda rows: encode_csv(rows, delimiter="\t"),
    "pipes": lambda rows: encode_csv(rows, delimiter="|"),
    "Excel's sep=; first line": lambda rows: encode_csv(rows, delimiter=";", sep_line=True),
    "old-Mac CR line endings, every field quoted": lambda rows: encode_csv(
        rows, newline="\r", quoting=csv.QUOTE_ALL
    ),
    "header in other case, padded, trailing empty column and blank lines": lambda rows: (
        encode_csv([[f" {name.title()} " for name in rows[0]] + [""]])
        + b"\n"
        + encode_csv([[*row, ""] for row in rows[1:]])
        + b",,\n\n"
    ),
}

#: Files that cannot be read, whatever their columns, and the cause their message must name.
UNREADABLE: dict[str, tuple[bytes, str]] = {
    "windows-1252 (Excel plain 'CSV')": (
        "text\n\u201cFire\u201d near the caf\u00e9\n".encode("cp1252"),
        "line 2: not UTF-8 (byte 0x93 at offset 5): probably Windows-1252, which Excel's "
        "plain 'CSV' saves; save it as CSV UTF-8",
    ),
    "an xlsx workbook": (
        zip_bytes("[Content_Types].xml", "xl/workbook.xml", "xl/worksheets/sheet1.xml"),
        "this is an Excel workbook (xlsx), not CSV: open it and save it as CSV UTF-8",
    ),
    "an xls workbook": (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504),
        "this is an Excel 97-2003 workbook (xls), not CSV",
    ),
    "a zip of a CSV": (zip_bytes("tweets.csv"), "this is a ZIP archive, not CSV: extract"),
    "a gzipped CSV": (gzip.compress(b"text\nfire\n"), "this is a gzip-compressed file, not CSV"),
    "a PDF": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "this is a PDF document, not CSV"),
    "an HTML page": (b"<!DOCTYPE html>\n<html><body>Sign in</body></html>\n", "an HTML page"),
    "JSON": (b'[{"text": "fire"}]\n', "this is JSON, not CSV"),
    "NUL bytes": (b"text\nfire\x00\x01\x02\n", "binary data (a NUL byte at offset 9, line 2)"),
    "utf-16 without a BOM": (
        "text\nfire\n".encode("utf-16-le"),
        "UTF-16 without a byte-order mark: save it as CSV UTF-8",
    ),
    "0 bytes": (b"", "empty (0 bytes)"),
    "whitespace only": (b" \r\n\t\n  ", "empty (only whitespace)"),
    "header only": (b"text\r\n", "no rows below the header"),
    "an unterminated quote": (
        b'text\nfine\n"never closed\nmore\n',
        "line 3: a quoted field is never closed",
    ),
    "text after a closing quote": (
        b'text\n"quoted" then more\n',
        "line 2: a closing quote is followed by more text",
    ),
    "a 200 KB field": (
        b"text\nfine\n" + b"x" * 200_000 + b"\n",
        "line 3: a field longer than 131072 characters",
    ),
    "a ragged row": (
        b"text\nfine\nfire, near the town\n",
        "line 3: 2 fields, but the header has 1 (fields are separated by commas",
    ),
}
