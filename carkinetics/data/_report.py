"""Collects data problems and formats them with one template (private)."""

from __future__ import annotations

import math

import numpy as np

#: More than this many problems of one kind are summarised ...
MAX_LISTED = 50
#: ... by listing this many and the count.
SHOWN_WHEN_MANY = 20


def fmt(value: object) -> str:
    """Format a cell value for a message: numbers plainly, text quoted, NaN as 'NaN'."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if value is None:
        return "None"
    return repr(value)


class Problems:
    """An ordered collection of problem lines, grouped by kind.

    Parameters
    ----------
    source : str, optional
        File name (or other description) prefixed to every line.
    rows : numpy.ndarray
        Row number (1-based data row of the input) of each table position.
    """

    def __init__(self, source: str | None, rows: np.ndarray) -> None:
        self.source = source
        self.rows = rows
        self.lines: list[str] = []

    @property
    def prefix(self) -> str:
        """Return ``"<source>: "`` or ``""``."""
        return f"{self.source}: " if self.source else ""

    def add(self, text: str) -> None:
        """Add one problem line (the source is prefixed)."""
        self.lines.append(self.prefix + text)

    def per_row(self, mask, column: str, values, what: str, fix: str) -> None:
        """Add one line per flagged row: row, column, the bad value, the problem and the fix.

        ``what`` and ``fix`` may contain ``{value}``, ``{row}`` and ``{i}`` (table position)
        placeholders, or be callables of the position ``i`` returning text.
        """
        idx = np.flatnonzero(np.asarray(mask, dtype=bool))
        self.listed(idx, lambda i: self.row_line(i, column, values[i], what, fix),
                    f"with this problem in column {column!r}")

    def row_line(self, i: int, column: str, value: object, what, fix) -> str:
        """Return the text of one row's problem (without the source)."""
        what_text = what(i) if callable(what) else what
        fix_text = fix(i) if callable(fix) else fix
        shown = "missing" if value is None or (isinstance(value, float) and math.isnan(value)) \
            else fmt(value)
        return f"row {self.rows[i]}, column {column!r}: {shown}{' ' * bool(what_text)}" \
            f"{what_text}; fix: {fix_text}"

    def listed(self, items, line, summary: str) -> None:
        """Add ``line(item)`` for each item, or the first 20 and a count when > 50."""
        n = len(items)
        shown = items if n <= MAX_LISTED else items[:SHOWN_WHEN_MANY]
        for item in shown:
            self.add(line(item))
        if n > MAX_LISTED:
            self.add(f"... and {n - SHOWN_WHEN_MANY} more rows {summary} ({n} in all).")
