"""Decode a user's text file strictly: refuse binaries by their first bytes, honour byte-order
marks, else UTF-8.

What a CSV is decoded as, and why Windows-1252 is refused rather than guessed, is described in
:mod:`tweetcls.core.csvfiles`, which reads every CSV input through :func:`decode`.
"""

from __future__ import annotations

import codecs
import json
import re

from tweetcls.core.errors import CsvFormatError

#: What to do with a file that is not a CSV.
_SAVE_AS_CSV = "open it and save it as CSV UTF-8"
#: Byte-order marks and their codecs; UTF-32 LE first, its mark starts like UTF-16 LE's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)
#: First bytes of files that are not text, what they are and what to do instead.
_MAGIC = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (xls)", _SAVE_AS_CSV),
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it first"),
    (b"BZh", "a bzip2-compressed file", "decompress it first"),
    (b"\xfd7zXZ\x00", "an xz-compressed file", "decompress it first"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "extract the CSV first"),
    (b"%PDF-", "a PDF document", "export the table as CSV UTF-8"),
    (b"PAR1", "a Parquet file", "write it as CSV UTF-8"),
    (b"SQLite format 3\x00", "an SQLite database", "export the table as CSV UTF-8"),
    (b"{\\rtf", "an RTF document", "export the table as CSV UTF-8"),
    (b"\x89PNG", "a PNG image", "send the table as CSV UTF-8"),
    (b"\xff\xd8\xff", "a JPEG image", "send the table as CSV UTF-8"),
)
#: What tells a ZIP-based document apart (a member's name or the ODF ``mimetype``; ZIP keeps
#: names uncompressed, so a truncated upload still shows them), in the order checked.
_ZIP_KINDS = (
    (b"xl/workbook.xml", "an Excel workbook (xlsx)", _SAVE_AS_CSV),
    (b"xl/workbook.bin", "an Excel binary workbook (xlsb)", _SAVE_AS_CSV),
    (b"opendocument.spreadsheet", "an OpenDocument spreadsheet (ods)", _SAVE_AS_CSV),
    (b"Index/Document.iwa", "an Apple Numbers spreadsheet", "export it as CSV UTF-8"),
    (b"word/document.xml", "a Word document (docx)", "export the table as CSV UTF-8"),
)
_LINE_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")


def _binary_kind(raw: bytes) -> tuple[str, str] | None:
    """``(what it is, what to do)`` if the first bytes say the file is not text."""
    if raw.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        for member, kind, advice in _ZIP_KINDS:
            if member in raw:
                return kind, advice
        return "a ZIP archive", "extract the CSV first"
    for magic, kind, advice in _MAGIC:
        if raw.startswith(magic) and not (magic == b"BZh" and raw[4:10] != b"1AY&SY"):
            return kind, advice
    return None


def text_kind(text: str) -> str | None:
    """What a decoded file is if it is a web page, XML or JSON rather than a CSV."""
    start = text.lstrip()[:20].lower()
    if start.startswith(("<!doctype html", "<html")):
        return "an HTML page"
    if start.startswith("<?xml"):
        return "an XML document"
    if start[:1] in ("{", "["):
        try:
            json.loads(text)
        except ValueError:
            return None
        return "JSON"
    return None


def _line_of(raw: bytes, offset: int) -> int:
    return len(_LINE_BREAK_BYTES.findall(raw, 0, offset)) + 1


def _looks_like_utf16(raw: bytes) -> bool:
    sample = raw[:400]
    return max(sample[0::2].count(0), sample[1::2].count(0)) > len(sample) // 4


def decode(raw: bytes) -> tuple[str, str]:
    """The text of a CSV file and its encoding's name (strict: see :mod:`tweetcls.core.csvfiles`).

    Raises:
        CsvFormatError: empty, not text, or not UTF-8 and without a UTF-16/32 byte-order mark.
    """
    if not raw:
        raise CsvFormatError("empty (0 bytes): expected a header line and rows")
    kind = _binary_kind(raw)
    if kind is not None:
        raise CsvFormatError(f"this is {kind[0]}, not CSV: {kind[1]}")
    for bom, codec, name in _BOMS:
        if raw.startswith(bom):
            try:
                return raw[len(bom) :].decode(codec), name
            except UnicodeDecodeError as err:
                offset = len(bom) + err.start
                raise CsvFormatError(
                    f"not valid {name}: it starts with a {name} byte-order mark, but the bytes "
                    f"at offset {offset} do not decode ({err.reason}); save it as CSV UTF-8"
                ) from None
    nul = raw.find(b"\x00")
    if nul >= 0:
        if _looks_like_utf16(raw):
            raise CsvFormatError("UTF-16 without a byte-order mark: save it as CSV UTF-8")
        raise CsvFormatError(
            f"binary data (a NUL byte at offset {nul}, line {_line_of(raw, nul)}), not a text CSV"
        )
    try:
        return raw.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError as err:
        try:
            raw.decode("cp1252")
            guess = ": probably Windows-1252, which Excel's plain 'CSV' saves"
        except UnicodeDecodeError:
            guess = ""
        raise CsvFormatError(
            f"line {_line_of(raw, err.start)}: not UTF-8 (byte {raw[err.start]:#04x} at offset "
            f"{err.start}){guess}; save it as CSV UTF-8"
        ) from None
