"""Read the CSV files users bring: the training data, uploads and benchmark tweets.

One reader for every CSV input (:func:`read_csv_bytes`, :func:`read_csv_file`): what
spreadsheet programs and other tools commonly export is read, anything else is refused with
one :class:`CsvFormatError` line naming the real cause and, where it applies, the line.

Read:

* UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8"), UTF-16 and UTF-32 with one
  (Excel's "Unicode text", tab-separated);
* the delimiters ``,`` ``;`` (European Excel) tab and ``|``, detected on the header line
  (:class:`csv.Sniffer`), or as Excel's ``sep=;`` first line says;
* CRLF, LF and old-Mac CR line endings; quoted fields with line breaks and doubled quotes;
* header names in any case and with surrounding spaces (``" Text"`` is ``text``); columns
  without a name and without values (trailing delimiters) are dropped; blank rows skipped.

Refused: other encodings (Windows-1252, as Excel's plain "CSV" saves, included: a wrong guess
would silently change the texts a model learns from or is scored on, so, like pandas and
Python's ``csv``, decoding is strict and the message says to save the file as CSV UTF-8);
spreadsheets, archives, PDFs and other binary files (by their first bytes); HTML, XML and
JSON; empty files, a header without rows, missing or repeated columns, rows with more or fewer
fields than the header, unclosed quotes and fields over :func:`csv.field_size_limit`.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tweetcls.core.decoding import decode, text_kind
from tweetcls.core.errors import CsvFormatError

#: Delimiters the header line is sniffed for; ``,`` without any of them.
DELIMITERS = ",;\t|"
#: How messages name a delimiter.
_DELIMITER_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "'|'"}
_SEP_LINE = re.compile(r'"?sep=([^"\r\n])"?(?:\r\n|\r|\n|$)')
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
#: Characters of the header line given to the sniffer.
_SNIFF_CHARS = 10_000


class FieldTooLargeError(CsvFormatError):
    """A field longer than :func:`csv.field_size_limit` characters.

    Args:
        message: The one-line message.
        line: Line where the field's row starts.
        limit: The limit, in characters.
    """

    def __init__(self, message: str, line: int, limit: int) -> None:
        super().__init__(message)
        self.line = line
        self.limit = limit


@dataclass(frozen=True)
class CsvTable:
    """The rows of a CSV, each field a string, and where they came from.

    Args:
        header: Column names, stripped and lower-cased.
        names: Column names as the header spells them (stripped).
        rows: The data rows, as many fields as the header each.
        lines: The line each row starts on (the header's line is 1, or 2 after ``sep=``).
        delimiter: The fields' delimiter.
        encoding: ``UTF-8``, ``UTF-16`` or ``UTF-32``.
    """

    header: tuple[str, ...]
    names: tuple[str, ...]
    rows: list[list[str]]
    lines: list[int]
    delimiter: str
    encoding: str

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[str]:
        """The values of column ``name`` (a lower-case header name), in row order."""
        index = self.header.index(name)
        return [row[index] for row in self.rows]

    def records(self, names: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
        """``(line, {name: value})`` per row, for the columns ``names`` present."""
        index = {name: self.header.index(name) for name in names if name in self.header}
        for line, row in zip(self.lines, self.rows, strict=True):
            yield line, {name: row[i] for name, i in index.items()}


def normalize_name(name: str) -> str:
    """A header name as matched: lower case, without surrounding spaces or byte-order marks."""
    return name.replace("\ufeff", "").strip().lower()


def sniff_delimiter(header_line: str) -> str:
    """The delimiter of a header line: one of :data:`DELIMITERS`, ``,`` if it has none."""
    try:
        return csv.Sniffer().sniff(header_line[:_SNIFF_CHARS], delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def _csv_error(err: csv.Error, start: int, line: int, delimiter: str) -> CsvFormatError:
    """One line for what :mod:`csv` raised on the row that starts on line ``start``."""
    message = str(err)
    if message.startswith("field larger than field limit"):
        limit = csv.field_size_limit()
        return FieldTooLargeError(
            f"line {start}: a field longer than {limit} characters (a very long value, or a "
            "quote that is never closed)",
            start,
            limit,
        )
    if message == "unexpected end of data":
        return CsvFormatError(f'line {start}: a quoted field is never closed (no closing ")')
    if "expected after" in message:
        return CsvFormatError(
            f"line {line}: a closing quote is followed by more text, not by the delimiter "
            f'{delimiter!r} (quotes inside a quoted field must be doubled: "")'
        )
    return CsvFormatError(f"line {line}: not a valid CSV ({message})")


def _drop_unnamed_empty(table: CsvTable) -> CsvTable:
    """``table`` without the columns that have neither a name nor a value."""
    keep = [
        i
        for i, name in enumerate(table.header)
        if name or any(row[i].strip() for row in table.rows)
    ]
    if len(keep) == len(table.header):
        return table
    return CsvTable(
        header=tuple(table.header[i] for i in keep),
        names=tuple(table.names[i] for i in keep),
        rows=[[row[i] for i in keep] for row in table.rows],
        lines=table.lines,
        delimiter=table.delimiter,
        encoding=table.encoding,
    )


def parse(text: str, encoding: str = "UTF-8") -> CsvTable:
    """Split decoded CSV text into a header and rows (delimiter sniffed or from ``sep=``).

    Raises:
        CsvFormatError: no header line, a malformed or ragged row, or no rows.
    """
    first_line = 1
    sep = _SEP_LINE.match(text)
    if sep:
        delimiter, text, first_line = sep.group(1), text[sep.end() :], 2
    if "\x00" in text:
        line = len(_LINE_BREAK.findall(text, 0, text.index("\x00"))) + first_line
        raise CsvFormatError(f"line {line}: a NUL character: binary data, not a text CSV")
    if not text.strip():
        where = "after the 'sep=' line" if sep else "only whitespace"
        raise CsvFormatError(f"empty ({where}): expected a header line and rows")
    if not sep:
        delimiter = sniff_delimiter(_LINE_BREAK.split(text.lstrip("\r\n"), maxsplit=1)[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    while True:
        start = reader.line_num + first_line
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            raise _csv_error(err, start, reader.line_num + first_line - 1, delimiter) from None
        if not any(field.strip() for field in fields):
            continue
        if header is None:
            header = fields
        elif len(fields) != len(header):
            raise CsvFormatError(_ragged(start, len(fields), len(header), delimiter))
        else:
            rows.append(fields)
            lines.append(start)
    if header is None:
        raise CsvFormatError("empty (only empty fields): expected a header line and rows")
    names = tuple(name.replace("\ufeff", "").strip() for name in header)
    table = CsvTable(
        tuple(normalize_name(n) for n in names), names, rows, lines, delimiter, encoding
    )
    if not rows:
        raise CsvFormatError("no rows below the header")
    return _drop_unnamed_empty(table)


def _ragged(line: int, fields: int, expected: int, delimiter: str) -> str:
    message = f"line {line}: {fields} field{'s' * (fields != 1)}, but the header has {expected}"
    if fields > expected:
        separated = _DELIMITER_NAMES.get(delimiter, delimiter)
        message += f" (fields are separated by {separated}: quote values that contain one)"
    return message


def _shown(names: Sequence[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def check_columns(
    table: CsvTable, required: Sequence[str], optional: Sequence[str] = (), *, strict: bool = False
) -> None:
    """Require the columns ``required``; refuse repeated known columns (and, if ``strict``,
    unknown ones).

    Raises:
        CsvFormatError: a required column is missing, a known one repeated, or (``strict``)
            another column is present. The message lists the header and suggests a near name.
    """
    known = (*required, *optional)
    for name in known:
        positions = [i + 1 for i, column in enumerate(table.header) if column == name]
        if len(positions) > 1:
            spelled = " and ".join(repr(table.names[i - 1]) for i in positions)
            raise CsvFormatError(
                f"header: column '{name}' appears {len(positions)} times ({spelled}, columns "
                f"{', '.join(map(str, positions))})"
            )
    for name in required:
        if name not in table.header:
            others = [c for c in table.header if c and c not in known]
            near = [c for c in others if name in c] or difflib.get_close_matches(name, others, 1)
            hint = (
                f"; rename '{table.names[table.header.index(near[0])]}' to '{name}'?"
                if near
                else ""
            )
            raise CsvFormatError(f"no '{name}' column (columns: {_shown(table.names)}){hint}")
    if strict:
        for i, name in enumerate(table.header):
            if name not in known:
                what = f"'{table.names[i]}'" if name else f"without a name (column {i + 1})"
                raise CsvFormatError(
                    f"header: unexpected column {what} (expected {', '.join(known)})"
                )


def read_csv_bytes(
    raw: bytes, required: Sequence[str], optional: Sequence[str] = (), *, strict: bool = False
) -> CsvTable:
    """Decode, parse and check a CSV file's bytes: see :func:`decode`, :func:`parse` and
    :func:`check_columns`.

    Args:
        raw: The file's content.
        required: Lower-case names of the columns it must have.
        optional: Lower-case names of the columns it may have.
        strict: Refuse every other column.

    Raises:
        CsvFormatError: the file cannot be read; one line, without the file's name.
    """
    text, encoding = decode(raw)
    kind = text_kind(text)
    if kind is not None:
        raise CsvFormatError(f"this is {kind}, not CSV: export the table as CSV UTF-8")
    table = parse(text, encoding)
    check_columns(table, required, optional, strict=strict)
    return table


def read_csv_file(
    path: Path, required: Sequence[str], optional: Sequence[str] = (), *, strict: bool = False
) -> CsvTable:
    """:func:`read_csv_bytes` of the file ``path``; the error message starts with the path.

    Raises:
        CsvFormatError: the file cannot be read or used (``"<path>: <cause>"``).
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise CsvFormatError(f"{path}: cannot read it ({err.strerror or err})") from None
    try:
        return read_csv_bytes(raw, required, optional, strict=strict)
    except FieldTooLargeError as err:
        raise FieldTooLargeError(f"{path}: {err}", err.line, err.limit) from None
    except CsvFormatError as err:
        raise CsvFormatError(f"{path}: {err}") from None
