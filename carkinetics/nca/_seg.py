"""Vectorised reductions over groups of a table sorted by group (private).

Every function takes ``g``, the group index of each element (0..G-1, non-decreasing), and
works for groups with no elements. Sums use :func:`numpy.bincount` (each group accumulated
on its own, so a group's result never depends on the size of the others); running sums
within groups use a padded (groups x longest group) matrix for the same reason.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["gsum", "gmax", "first_where", "last_where", "positions", "padded", "running", "ols"]

#: Above this many cells the padded matrix is replaced by a loop over groups.
_MAX_CELLS = 20_000_000


def gsum(g: NDArray, x: NDArray, n: int) -> NDArray:
    """Sum of ``x`` per group (0 for an empty group)."""
    return np.bincount(g, weights=x, minlength=n)


def gmax(g: NDArray, x: NDArray, n: int) -> NDArray:
    """Maximum of ``x`` per group (-inf for an empty group)."""
    out = np.full(n, -np.inf)
    np.maximum.at(out, g, x)
    return out


def first_where(g: NDArray, mask: NDArray, n: int) -> NDArray:
    """Index of the first element of each group where ``mask`` holds (-1 if none)."""
    idx = np.flatnonzero(mask)
    out = np.full(n, -1, dtype=np.int64)
    if idx.size:
        gi = g[idx]
        new = np.r_[True, gi[1:] != gi[:-1]]
        out[gi[new]] = idx[new]
    return out


def last_where(g: NDArray, mask: NDArray, n: int) -> NDArray:
    """Index of the last element of each group where ``mask`` holds (-1 if none)."""
    idx = np.flatnonzero(mask)
    out = np.full(n, -1, dtype=np.int64)
    if idx.size:
        gi = g[idx]
        end = np.r_[gi[1:] != gi[:-1], True]
        out[gi[end]] = idx[end]
    return out


def positions(g: NDArray, n: int) -> tuple[NDArray, NDArray, NDArray]:
    """Return ``(start, count, pos)``: each group's first index and size, each element's rank."""
    count = np.bincount(g, minlength=n)
    start = np.r_[0, np.cumsum(count)[:-1]].astype(np.int64)
    pos = np.arange(g.size) - start[g]
    return start, count, pos


def padded(g: NDArray, x: NDArray, n: int,
           fill: float = 0.0) -> tuple[NDArray, NDArray, NDArray]:
    """Place ``x`` in a (groups x longest group) matrix, left-aligned.

    Returns
    -------
    tuple
        ``(matrix, rows, cols)`` with ``matrix[rows, cols] == x``.
    """
    _, count, pos = positions(g, n)
    width = int(count.max()) if n and g.size else 0
    mat = np.full((n, width), fill)
    mat[g, pos] = x
    return mat, g, pos


def running(g: NDArray, x: NDArray, n: int, reverse: bool = False) -> NDArray:
    """Inclusive running sum of ``x`` within each group (from the end when ``reverse``)."""
    if g.size == 0:
        return np.zeros(0)
    _, count, _ = positions(g, n)
    if n * int(count.max()) <= _MAX_CELLS:
        mat, rows, cols = padded(g, x, n)
        if reverse:
            return np.cumsum(mat[:, ::-1], axis=1)[:, ::-1][rows, cols]
        return np.cumsum(mat, axis=1)[rows, cols]
    out = np.empty_like(x, dtype=float)  # pragma: no cover - very long ragged groups
    start = np.r_[0, np.cumsum(count)]
    for k in range(n):
        s = slice(start[k], start[k + 1])
        out[s] = np.cumsum(x[s][::-1])[::-1] if reverse else np.cumsum(x[s])
    return out


def ols(g: NDArray, x: NDArray, y: NDArray, n: int) -> dict[str, NDArray]:
    """Least-squares line ``y = a + b x`` per group, centred (two passes) for accuracy.

    Returns
    -------
    dict
        ``n`` (points), ``slope``, ``xbar``, ``ybar`` (the line passes through them),
        ``r2`` and ``r2adj`` (NaN with fewer than 3 points or no spread in y), ``sxx``.
    """
    cnt = np.bincount(g, minlength=n).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        xbar = gsum(g, x, n) / cnt
        ybar = gsum(g, y, n) / cnt
        dx = x - xbar[g]
        dy = y - ybar[g]
        sxx = gsum(g, dx * dx, n)
        sxy = gsum(g, dx * dy, n)
        syy = gsum(g, dy * dy, n)
        slope = np.where(sxx > 0, sxy / sxx, np.nan)
        r2 = np.where((sxx > 0) & (syy > 0), sxy * sxy / (sxx * syy), np.nan)
        r2adj = np.where(cnt > 2, 1.0 - (1.0 - r2) * (cnt - 1) / (cnt - 2), np.nan)
    return {"n": cnt.astype(np.int64), "slope": slope, "xbar": xbar, "ybar": ybar, "r2": r2,
            "r2adj": r2adj, "sxx": sxx}
