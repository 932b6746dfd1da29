"""Delimited-text parsing with errors that point at a line (pandas does the parsing)."""

from __future__ import annotations

import csv
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.data.errors import DataFormatError


@dataclass
class Table:
    """Parsed rows as strings; `lines[r]` is the 1-based line of row r in the file."""

    frame: pd.DataFrame
    lines: np.ndarray


def wrong_fields(found: int, wanted: int) -> str:
    return f"found {found} field{'' if found == 1 else 's'} instead of {wanted}"


def read_bytes(path: Path, expected: str) -> bytes:
    data = path.read_bytes()
    if not data.strip():
        raise DataFormatError(path, 1, "the file is empty", expected)
    return data


def decode(data: bytes) -> str:
    """UTF-8 (a byte-order mark allowed), else Latin-1 (older MovieLens files), which accepts
    any byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def check_field_counts(path: Path, data: bytes, sep: bytes, n_fields: int, expected: str) -> None:
    """Every non-blank line must hold exactly `n_fields` fields (vectorised over the bytes, so it
    costs little even on millions of lines; only for formats without quoting)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == ord("\n"))
    if len(buf) and buf[-1] != ord("\n"):
        ends = np.append(ends, len(buf))
    starts = np.concatenate(([0], ends[:-1] + 1))
    seps = np.flatnonzero(buf == sep[0])
    counts = np.bincount(np.searchsorted(ends, seps), minlength=len(ends))[: len(ends)] + 1
    length = ends - starts
    stripped = length - (buf[np.maximum(ends - 1, 0)] == ord("\r")) * (length > 0)
    bad = np.flatnonzero((counts != n_fields) & (stripped > 0))
    if len(bad):
        row = int(bad[0])
        raise DataFormatError(path, row + 1, wrong_fields(int(counts[row]), n_fields), expected)


def parse_delimited(
    path: Path,
    text: str,
    *,
    sep: str,
    expected: str,
    header: bool = False,
    quoting: int = csv.QUOTE_NONE,
) -> Table:
    """Parse into string columns, blank lines dropped; pandas' own tokenizer errors are turned into
    a DataFormatError at the line pandas names."""
    try:
        with warnings.catch_warnings():
            # Rows longer than the header make pandas drop cells with only a warning.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(text),
                sep=sep,
                header=0 if header else None,
                index_col=False,
                dtype=str,
                keep_default_na=False,
                skip_blank_lines=False,
                quoting=quoting,
                engine="c",
            )
    except pd.errors.ParserWarning as exc:
        raise DataFormatError(path, 2, "more fields than the header", expected) from exc
    except pd.errors.ParserError as exc:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if found is None:
            raise DataFormatError(path, None, f"unparsable ({exc})", expected) from exc
        want, line, saw = (int(g) for g in found.groups())
        problem = wrong_fields(saw, want)
        raise DataFormatError(path, line, problem, expected) from exc
    except pd.errors.EmptyDataError as exc:
        raise DataFormatError(path, 1, "the file is empty", expected) from exc
    lines = np.arange(len(frame), dtype=np.int64) + (2 if header else 1)
    blank = (frame == "").all(axis=1).to_numpy()
    if blank.any():
        frame = frame.loc[~blank].reset_index(drop=True)
        lines = lines[~blank]
    if frame.empty:
        raise DataFormatError(path, int(lines[0]) if len(lines) else 1, "no data rows", expected)
    return Table(frame, lines)


def require_nonempty(path: Path, table: Table, column: str | int, what: str, expected: str) -> None:
    empty = np.flatnonzero((table.frame[column] == "").to_numpy())
    if len(empty):
        raise DataFormatError(path, int(table.lines[empty[0]]), f"{what} is missing", expected)


def numeric_column(
    path: Path, table: Table, column: str | int, what: str, expected: str
) -> np.ndarray:
    """The column as numbers (int64 when every value is integral, else float64)."""
    values = pd.to_numeric(table.frame[column], errors="coerce").to_numpy()
    bad = np.flatnonzero(pd.isna(values))
    if len(bad):
        row = int(bad[0])
        raw = table.frame[column].iat[row]
        raise DataFormatError(
            path, int(table.lines[row]), f"{what} {raw!r} is not a number", expected
        )
    return values


def join_nonempty(parts: list[pd.Series], sep: str = "; ") -> pd.Series:
    """Row-wise join of string columns, skipping empty cells."""
    out = pd.Series("", index=parts[0].index, dtype=object)
    for part in parts:
        out = out.where(part == "", out.where(out == "", out + sep) + part)
    return out
