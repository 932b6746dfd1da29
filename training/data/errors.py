"""The one error type for unreadable input data."""

from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    """A data file does not match its format; the message names the file, the line and what was
    expected, so that the user can fix the file without reading our code."""

    def __init__(self, path: Path | str, line: int | None, problem: str, expected: str) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        self.expected = expected
        where = f"{self.path}, line {line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {problem}; expected {expected}")
