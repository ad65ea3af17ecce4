"""Terminal rate constant lambda_z by the "best fit" rule, vectorised over profiles.

Candidates are the quantified (``cens != 1``, ``dv > 0``) post-dose samples strictly after
Tmax (Cmax excluded: extravascular dosing, and CAR-T, whose level expands in the sampled
compartment so the peak belongs to expansion, not decline) or at and after Tmax for an IV
bolus, minus any sample excluded by hand. For every tail of the last ``n >= min_points``
candidates, ``log(conc)`` is regressed on time by least squares; fits with a negative slope
(``lambda_z > 0``, by more than rounding noise: a decline above 1e-10 log units per SD of
the fitted times) compete. The fit with the largest adjusted R^2,
``1 - (1 - R^2)(n - 1)/(n - 2)``, wins; among fits within ``tol`` (1e-4) of it, the one with
the most points. A profile with points included by hand uses exactly those points
(``n >= 2``; no search, Tmax not enforced).

All tails of all profiles are fitted at once: the candidates sit left-aligned in a
(profiles x longest) matrix, time and log-concentration are shifted to the last candidate
of their profile, and reversed cumulative sums give every tail's sums in one pass.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from carkinetics.nca import _seg

__all__ = ["best_fit"]

#: Smallest decline (log units per SD of the fitted times) that counts as a terminal phase.
_MIN_DECLINE = 1e-10


def best_fit(g: NDArray, t: NDArray, c: NDArray, n: int, *, min_points: int = 3,
             tol: float = 1e-4, forced: NDArray | None = None) -> dict[str, NDArray]:
    """Fit lambda_z per profile.

    Parameters
    ----------
    g, t, c : ndarray
        Candidate samples (profile index, time, concentration > 0), sorted by (g, t).
    n : int
        Number of profiles.
    min_points : int, default 3
        Fewest points in a best-fit regression (>= 3).
    tol : float, default 1e-4
        Adjusted-R^2 tolerance within which more points are preferred.
    forced : ndarray of bool, optional
        Per profile: ``g, t, c`` are the points chosen by hand; fit them as they are.

    Returns
    -------
    dict of ndarray
        Per profile: ``lamz``, ``intercept`` (log-concentration at time 0), ``r2``,
        ``r2adj``, ``npt``, ``tlo``, ``thi`` (first and last time used), ``ncand``
        (candidates), ``status`` (0 fitted, 1 too few candidates, 2 no negative slope);
        and ``used``: per candidate sample, whether the chosen fit used it.
    """
    if min_points < 3:
        raise ValueError(f"Invalid min_points={min_points}; expected an integer >= 3 (the "
                         "adjusted R^2 needs 3 points).")
    forced = np.zeros(n, dtype=bool) if forced is None else forced
    out = {k: np.full(n, np.nan) for k in ("lamz", "intercept", "r2", "r2adj", "tlo", "thi")}
    out["npt"] = np.zeros(n, dtype=np.int64)
    out["ncand"] = np.bincount(g, minlength=n)
    out["status"] = np.ones(n, dtype=np.int64)
    used = np.zeros(g.size, dtype=bool)
    y = np.log(c)
    auto = ~forced[g]
    if auto.any():
        _search(g[auto], t[auto], y[auto], n, min_points, tol, out, used, np.flatnonzero(auto))
    man = ~auto
    if man.any():
        _manual(g[man], t[man], y[man], n, forced, out)
        used[man] = out["status"][g[man]] == 0
    out["used"] = used
    return out


def _search(g, t, y, n, min_points, tol, out, used, where) -> None:
    last = _seg.last_where(g, np.ones(g.size, dtype=bool), n)
    has = last >= 0
    t0 = np.zeros(n)
    y0 = np.zeros(n)
    t0[has], y0[has] = t[last[has]], y[last[has]]
    x, v = t - t0[g], y - y0[g]  # shifted: the sums stay small and accurate
    width_g = np.bincount(g, minlength=n)
    rows = np.flatnonzero(width_g >= min_points)
    if rows.size == 0:
        return
    keep = np.isin(g, rows)
    gi = np.searchsorted(rows, g[keep])
    m = rows.size
    k = width_g[rows]
    sums = {}
    for name, val in (("x", x[keep]), ("y", v[keep]), ("xx", x[keep] ** 2),
                      ("yy", v[keep] ** 2), ("xy", x[keep] * v[keep])):
        mat = _seg.padded(gi, val, m)[0]
        sums[name] = np.cumsum(mat[:, ::-1], axis=1)[:, ::-1]
    width = sums["x"].shape[1]
    npts = (k[:, None] - np.arange(width)[None, :]).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        sxx = sums["xx"] - sums["x"] ** 2 / npts
        sxy = sums["xy"] - sums["x"] * sums["y"] / npts
        syy = sums["yy"] - sums["y"] ** 2 / npts
        slope = sxy / sxx
        r2 = np.where(syy > 0, sxy * sxy / (sxx * syy), 0.0)
        r2adj = 1.0 - (1.0 - r2) * (npts - 1) / (npts - 2)
        # a decline of less than 1e-10 log units per SD of the window's times is rounding
        # noise (log(c * scale) = log(c) + log(scale) to ~1e-15), not a terminal phase: it
        # would make lambda_z's sign, and AUCinf, depend on the unit of the data
        decline = -slope * np.sqrt(np.where(sxx > 0, sxx, 0.0) / npts)
    valid = (npts >= min_points) & (sxx > 0) & (decline > _MIN_DECLINE)
    best = np.max(np.where(valid, r2adj, -np.inf), axis=1)
    ok = valid & (r2adj >= best[:, None] - tol * (1 + 1e-9))
    fitted = valid.any(axis=1)
    j = np.argmax(ok, axis=1)  # the first tail within tolerance has the most points
    rr = np.flatnonzero(fitted)
    jj = j[rr]
    grp = rows[rr]
    out["status"][rows] = 2
    out["status"][grp] = 0
    nn = npts[rr, jj]
    b = slope[rr, jj]
    xbar = sums["x"][rr, jj] / nn
    ybar = sums["y"][rr, jj] / nn
    out["lamz"][grp] = -b
    out["intercept"][grp] = ybar - b * xbar + y0[grp] - b * t0[grp]
    out["r2"][grp] = r2[rr, jj]
    out["r2adj"][grp] = r2adj[rr, jj]
    out["npt"][grp] = nn.astype(np.int64)
    out["thi"][grp] = t0[grp]
    start, _, pos = _seg.positions(gi, m)
    first_used = np.full(m, np.iinfo(np.int64).max)
    first_used[rr] = jj
    u = pos >= first_used[gi]
    used[where[keep][u]] = True
    tlo_idx = start[rr] + jj
    out["tlo"][grp] = t[keep][tlo_idx]


def _manual(g, t, y, n, forced, out) -> None:
    fit = _seg.ols(g, t, y, n)
    grp = np.flatnonzero(forced)
    cnt = fit["n"][grp]
    b = fit["slope"][grp]
    ok = (cnt >= 2) & (b < 0)
    out["status"][grp] = np.where(cnt >= 2, np.where(ok, 0, 2), 1)
    sel = grp[ok]
    out["lamz"][sel] = -fit["slope"][sel]
    out["intercept"][sel] = fit["ybar"][sel] - fit["slope"][sel] * fit["xbar"][sel]
    out["r2"][sel] = fit["r2"][sel]
    out["r2adj"][sel] = fit["r2adj"][sel]
    out["npt"][grp] = cnt
    out["tlo"][sel] = _seg.gmax(g, -t, n)[sel] * -1
    out["thi"][sel] = _seg.gmax(g, t, n)[sel]
