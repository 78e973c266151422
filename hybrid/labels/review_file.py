"""A review file as a table: rows out to CSV (for a spreadsheet) or JSONL, rows back in
whatever a spreadsheet did to them, each row named by where it is in the file.

A spreadsheet runs a cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return
as a formula, so such a cell is written with a `'` before it (OWASP's rule against CSV
injection), and so is a cell that begins with `'`; reading takes that one `'` off again,
so every cell comes back exactly as it was. Read back, a CSV file may be UTF-8 (with or
without a byte-order mark) or UTF-16/32 with one, and separated by commas, semicolons or
tabs (what spreadsheets write in other locales). Anything else is refused, naming the file.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from hybrid.errors import UsageError
from hybrid.ingest.article import ArticleError
from hybrid.ingest.records import parse_json, to_json
from hybrid.output import PathLike, open_output

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MAX_CELL_CHARS = 32_767  # the most a spreadsheet cell holds
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_DELIMITERS = ",;\t"

Row = dict[str, Any]
Column = str | tuple[str, ...]  # a column's name, or the names it may have


def is_csv(path: PathLike) -> bool:
    return Path(path).suffix.lower() == ".csv"


def to_cell(text: str) -> str:
    """`text` as a spreadsheet shows it, never runs it."""
    return f"'{text}" if text.startswith((*FORMULA_START, "'")) else text


def from_cell(text: str) -> str:
    """What `to_cell` was given."""
    return text[1:] if text.startswith("'") and text[1:].startswith((*FORMULA_START, "'")) \
        else text


def write_table(path: PathLike, columns: Sequence[str], rows: Iterable[Row],
                inputs: Iterable[PathLike | None] = ()) -> None:
    """CSV (UTF-8 with a byte-order mark, which spreadsheets need to read Chinese; cells of
    text) when `path` ends in .csv, else one JSON object a line."""
    if not is_csv(path):
        with open_output(path, inputs=inputs) as fh:
            for row in rows:
                fh.write(to_json(row) + "\n")
        return
    with open_output(path, encoding="utf-8-sig", newline="", inputs=inputs) as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: to_cell(v) if isinstance(v, str) else v for k, v in row.items()})


def read_table(path: PathLike, required: Sequence[Column]) -> list[tuple[str, Row | str]]:
    """(where, row) for every row, `where` as "row N" (a spreadsheet's row, the header being
    row 1) or "line N"; (where, message) for a row that cannot be read. A file that is no
    such table at all (a CSV file without the `required` columns; a tuple of names there is
    one column of any of them) is a `UsageError` naming it."""
    text = _decode(Path(path))
    rows = _csv_rows(path, text, required) if is_csv(path) else _jsonl_rows(text)
    return [(where, _check_cells(row)) if isinstance(row, dict) else (where, row)
            for where, row in rows]


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(codec)
            except UnicodeDecodeError as exc:
                raise UsageError(f"{path}: not valid {codec.upper()} text ({exc.reason} at "
                                 f"byte {exc.start})") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset "
                         f"{exc.start}){_guess(raw)}; save it as UTF-8 (in Excel: \"CSV UTF-8\")"
                         " and import it again") from exc
    if "\x00" in text:
        raise UsageError(f"{path}: holds NUL bytes, as UTF-16 or UTF-32 text without a "
                         "byte-order mark does; save it as UTF-8 and import it again")
    return text


def _guess(raw: bytes) -> str:
    try:
        raw.decode("gb18030")
    except UnicodeDecodeError:
        return ""
    return ": it looks like GBK/GB18030, which Excel writes for \"CSV\" on Chinese Windows"


@contextlib.contextmanager
def _any_cell_size() -> Iterator[None]:
    """Read a cell of any size, to name it in an error rather than stop at csv's limit."""
    limit = csv.field_size_limit(sys.maxsize)
    try:
        yield
    finally:
        csv.field_size_limit(limit)


def _csv_rows(path: PathLike, text: str, required: Sequence[Column]
              ) -> list[tuple[str, Row | str]]:
    header = text.split("\n", 1)[0]
    wanted = [(c,) if isinstance(c, str) else c for c in required]
    for delimiter in _DELIMITERS:
        columns = [c.strip() for c in next(csv.reader([header], delimiter=delimiter), [])]
        if all(set(names) & set(columns) for names in wanted):
            break
    else:
        named = " and ".join(repr(first) + "".join(f" (or {other!r})" for other in others)
                             for first, *others in wanted)
        raise UsageError(f"{path}: its first row has no {named} columns (it is "
                         f"{header[:200]!r}); a review file has the columns `hybrid review "
                         "export` wrote, separated by commas")
    out: list[tuple[str, Row | str]] = []
    with _any_cell_size():
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        next(reader)
        for number, cells in enumerate(reader, 2):
            if any(cell.strip() for cell in cells):
                out.append((f"row {number}", {name: from_cell(cell) for name, cell
                                              in zip(columns, cells, strict=False)}))
    return out


def _jsonl_rows(text: str) -> list[tuple[str, Row | str]]:
    out: list[tuple[str, Row | str]] = []
    for number, line in enumerate(io.StringIO(text), 1):
        if not line.strip():
            continue
        row = parse_json(line.rstrip("\r\n"), f"line {number}")
        if isinstance(row, ArticleError):
            out.append((f"line {number}", f"not JSON: {row.detail}"))
        elif not isinstance(row, dict):
            out.append((f"line {number}", f"not a JSON object but a {type(row).__name__}"))
        else:
            out.append((f"line {number}", row))
    return out


def _check_cells(row: Row) -> Row | str:
    for name, value in row.items():
        if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
            return (f"field {name!r}: {len(value):,} characters, more than a spreadsheet "
                    f"cell holds ({MAX_CELL_CHARS:,})")
    return row
