"""CAR-T cellular-kinetic NCA parameters, vectorised over profiles.

All use measured samples only (BLQ rules do not apply), with times since the infusion:

``FOLDX``
    Fold expansion: Cmax over the first post-infusion sample (``time >= 0``); when that
    sample is BLQ, over its LLOQ (so the fold expansion is then a lower bound).
``KEXP``, ``TDOUB``, ``KEXPNPT``
    Expansion rate: slope of the least-squares line of log(concentration) on time through
    the quantified samples from the first quantified one up to Tmax (inclusive);
    doubling time ``ln 2 / KEXP``. Needs 2 points and a positive slope.
``KEARLY``, ``HLEARLY``, ``KEARLNPT``
    Early decline: the same regression through the quantified samples from Tmax
    (inclusive) to ``early_end`` (default day 28); half-life ``ln 2 / KEARLY``. Needs 2
    points and a negative slope.
``TFBLQ``
    Time of the first BLQ sample after Tmax (loss of detection). NaN, with the reason, when
    the level stays quantified to the last sample.

The terminal half-life is ``LAMZHL`` (best-fit lambda_z, see
:mod:`carkinetics.nca.lambda_z`) and persistence is ``TLST`` (time of the last quantified
sample); AUC0-Tlast is ``AUCLST`` and AUC0-28d / AUC0-84d are ``AUCINT`` over (0, 28) and
(0, 84).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from carkinetics.nca import _seg

__all__ = ["cart_parameters"]

LN2 = float(np.log(2.0))


def _reasons(n: int, cases: list[tuple[NDArray, str]]) -> NDArray:
    out = np.full(n, "", dtype=object)
    for mask, text in reversed(cases):  # the first case listed wins
        out[mask] = text
    return out


def cart_parameters(g: NDArray, t: NDArray, c: NDArray, cens: NDArray, n: int, *,
                    cmax: NDArray, tmax: NDArray, t_firstq: NDArray,
                    early_end: float = 28.0) -> dict[str, tuple[NDArray, NDArray]]:
    """Compute the CAR-T parameters of every profile.

    Parameters
    ----------
    g, t, c, cens : ndarray
        Post-infusion samples sorted by (profile, time); ``c`` is the LLOQ on BLQ rows.
    n : int
        Number of profiles.
    cmax, tmax, t_firstq : ndarray
        Per profile (NaN without a quantified sample).
    early_end : float, default 28.0
        Last time (days since infusion) of the early-decline regression.

    Returns
    -------
    dict
        Code -> ``(values, exclusion reasons)``, one element per profile.
    """
    q = (cens != 1) & (c > 0)
    out: dict[str, tuple[NDArray, NDArray]] = {}
    nothing = np.isnan(cmax)

    first = _seg.first_where(g, np.ones(g.size, dtype=bool), n)
    has = first >= 0
    c_first = np.full(n, np.nan)
    c_first[has] = c[first[has]]
    with np.errstate(divide="ignore", invalid="ignore"):
        foldx = np.where(c_first > 0, cmax / c_first, np.nan)
    out["FOLDX"] = (foldx, _reasons(n, [
        (nothing, "no quantified sample"),
        (c_first == 0, "first post-infusion level is 0 (a measured zero)")]))

    with np.errstate(invalid="ignore"):
        m = q & (t >= t_firstq[g]) & (t <= tmax[g])
    fit = _seg.ols(g[m], t[m], np.log(c[m]), n)
    k, npt = fit["slope"], fit["n"]
    ok = (npt >= 2) & (k > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tdoub = np.where(ok, LN2 / k, np.nan)
    why = _reasons(n, [
        (nothing, "no quantified sample"),
        (npt < 2, "Tmax is the first quantified sample: no expansion phase sampled"),
        (~(k > 0), "no expansion: non-positive slope from the first quantified sample to "
                   "Tmax")])
    out["KEXP"] = (np.where(ok, k, np.nan), why)
    out["TDOUB"] = (tdoub, why)
    out["KEXPNPT"] = (npt.astype(float), _reasons(n, [(nothing, "no quantified sample")]))

    with np.errstate(invalid="ignore"):
        m = q & (t >= tmax[g]) & (t <= early_end)
    fit = _seg.ols(g[m], t[m], np.log(c[m]), n)
    k, npt = -fit["slope"], fit["n"]
    ok = (npt >= 2) & (k > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        hl = np.where(ok, LN2 / k, np.nan)
    why = _reasons(n, [
        (nothing, "no quantified sample"),
        (tmax > early_end, f"Tmax is after early_end = {early_end:g}"),
        (npt < 2, f"fewer than 2 quantified samples from Tmax to {early_end:g}"),
        (~(k > 0), f"no decline from Tmax to {early_end:g} (non-negative slope)")])
    out["KEARLY"] = (np.where(ok, k, np.nan), why)
    out["HLEARLY"] = (hl, why)
    out["KEARLNPT"] = (npt.astype(float), _reasons(n, [(nothing, "no quantified sample")]))

    with np.errstate(invalid="ignore"):
        idx = _seg.first_where(g, (cens == 1) & (t > tmax[g]), n)
    tf = np.where(idx >= 0, t[np.maximum(idx, 0)] if t.size else np.nan, np.nan)
    out["TFBLQ"] = (tf, _reasons(n, [
        (nothing, "no quantified sample"),
        (idx < 0, "no BLQ sample after Tmax: quantified to the last sample")]))
    return out
