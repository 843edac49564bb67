"""Reading operator-supplied files: every way a file can be wrong becomes a ValidationError.

Catalogs, usage files, gateway exports, saved hub plans and key files are given by people
(or cron lines) and may be missing, a directory, empty, binary, not UTF-8, truncated,
nested a hundred thousand levels deep or not what their name says. Python and pandas
report each of those with a different exception (``IsADirectoryError``,
``UnicodeDecodeError``, ``RecursionError``, ``pandas.errors.ParserError``…) and a
traceback; these helpers turn them into one :class:`~hubkit.errors.ValidationError` whose
message names the file, the line where one is known, and what to do (``hint``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pandas as pd

from hubkit.errors import ValidationError


def _fail(
    path: Path | str, what: str, problem: str, hint: str, field: str = "path"
) -> ValidationError:
    text = f"{what} {path}: {problem}"
    return ValidationError(f"{text}; {hint}" if hint else text, field=field, value=str(path))


def _missing(path: Path, what: str, hint: str) -> ValidationError:
    text = f"{what} not found: {path}"
    return ValidationError(f"{text}; {hint}" if hint else text, field="path", value=str(path))


def read_text(path: str | Path, what: str, *, hint: str = "") -> str:
    """The file's text (UTF-8), or a ValidationError naming the file and the problem."""
    file = Path(path)
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _missing(file, what, hint) from None
    except IsADirectoryError:
        raise _fail(file, what, "is a directory, not a file", hint) from None
    except PermissionError:
        raise _fail(file, what, "permission denied", hint) from None
    except UnicodeDecodeError as exc:
        line = file.read_bytes()[: exc.start].count(b"\n") + 1
        raise _fail(
            file, what, f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} on line {line}); "
            "is it binary, or saved in another encoding?", hint,
        ) from None  # fmt: skip
    except OSError as exc:
        raise _fail(file, what, f"cannot be read ({exc.strerror or exc})", hint) from None


def check_file(path: str | Path, what: str, *, hint: str = "") -> Path:
    """``path`` as a Path if it names a readable regular file; else a ValidationError."""
    file = Path(path)
    if file.is_dir():
        raise _fail(file, what, "is a directory, not a file", hint)
    if not file.is_file():
        raise _missing(file, what, hint)
    return file


def loads_json(
    text: str, name: str | Path, what: str, *, hint: str = "", field: str = "json"
) -> Any:
    """Parse JSON text read from ``name``; empty, damaged or absurdly deep JSON is refused."""
    if not text.strip():
        raise _fail(name, what, "the file is empty (not valid JSON)", hint, field)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(
            name, what, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
            hint, field,
        ) from None  # fmt: skip
    except RecursionError:
        # json's C decoder recurses per nesting level; no hubkit file nests more than a few
        raise _fail(name, what, "JSON nested too deeply to be a real file", hint, field) from None


def read_csv_frame(path: str | Path, what: str, *, hint: str = "", **options: Any) -> pd.DataFrame:
    """``pandas.read_csv(path, **options)`` with its parser errors made ValidationErrors."""
    file = check_file(path, what, hint=hint)
    try:
        # without chunksize/iterator (no caller passes them) read_csv returns one frame
        frame: pd.DataFrame = pd.read_csv(file, **options)
        return frame
    except pd.errors.EmptyDataError:
        raise _fail(file, what, "the file is empty (not even a header line)", hint) from None
    except pd.errors.ParserError as exc:
        # pandas says "… in line 3, saw 2" or "EOF inside string starting at row 1"
        raise _fail(file, what, f"not a well-formed CSV file ({_first_line(exc)})", hint) from None
    except UnicodeDecodeError as exc:
        raise _fail(
            file, what, f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}); is it binary, or saved in another encoding?", hint,
        ) from None  # fmt: skip
    except (csv.Error, ValueError) as exc:
        raise _fail(file, what, f"not a well-formed CSV file ({_first_line(exc)})", hint) from None
    except OSError as exc:
        raise _fail(file, what, f"cannot be read ({exc.strerror or exc})", hint) from None


def csv_rows(text: str, name: str | Path, what: str, *, hint: str = "") -> list[dict[str, Any]]:
    """``csv.DictReader`` rows of ``text``, with the csv module's errors made ValidationErrors."""
    reader = csv.DictReader(text.splitlines())
    try:
        return list(reader)
    except csv.Error as exc:
        raise _fail(
            name, what, f"not a well-formed CSV file (line {reader.line_num}: {exc})", hint
        ) from None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
