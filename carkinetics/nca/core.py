"""Non-compartmental analysis of concentration-time tables: :func:`nca`.

One profile is one (id, endpoint). Time 0 is the dose (for CAR-T, the infusion); samples
before it are ignored. Conventions (Phoenix WinNonlin / PKNCA):

* Cmax, Tmax (first time at Cmax), Clast, Tlast use quantified samples only
  (``cens != 1`` and ``dv > 0``); an above-ULOQ sample counts at its ULOQ (noted).
* The curve starts at time 0: a sample at time 0 is used as it is; otherwise C(0) = 0 for
  ``dosing="cart"`` or ``"extravascular"``, and for ``"iv_bolus"`` C0 is back-extrapolated
  log-linearly from the first two samples (the first sample if they do not decline).
* BLQ samples follow :class:`~carkinetics.nca.blq.BLQRule` (CAR-T defaults: before the
  first quantified -> 0, between -> dropped, after the last -> 0).
* AUClast runs from 0 to Tlast, AUCall to the last point of the curve; AUCinf adds
  Clast / lambda_z (observed Clast, AUCIFO; or predicted by the lambda_z line, AUCIFP).
* lambda_z by the best-fit rule, see :mod:`carkinetics.nca.lambda_z`.
* AUC over an interval interpolates inside the curve (log-linearly where the method does)
  and is NaN, with the reason, where the interval ends after the last usable
  concentration, unless ``extrapolate=True`` (then lambda_z extrapolates, noted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from carkinetics._validation import check_option
from carkinetics.exceptions import DataError
from carkinetics.nca import _seg
from carkinetics.nca._input import Profiles, match_points, prepare
from carkinetics.nca._table import Collector, to_wide
from carkinetics.nca.auc import AUC_METHODS, Curve
from carkinetics.nca.blq import BLQRule, apply_blq
from carkinetics.nca.cart import cart_parameters
from carkinetics.nca.lambda_z import best_fit

__all__ = ["nca", "NCAResult", "DOSING", "CART_INTERVALS"]

DOSING: tuple[str, ...] = ("cart", "extravascular", "iv_bolus")
#: AUC intervals computed by default for CAR-T (days): AUC0-28d and AUC0-84d.
CART_INTERVALS: tuple[tuple[float, float], ...] = ((0.0, 28.0), (0.0, 84.0))
LN2 = float(np.log(2.0))


@dataclass
class NCAResult:
    """Result of :func:`nca`.

    Attributes
    ----------
    table : DataFrame
        Long table, one row per profile and parameter: ``id, endpoint, start, end,
        PPTESTCD, PPTEST, PPORRES`` (value), ``PPORRESU`` (unit), ``exclude`` (why the value
        is NaN) and ``note`` (caveats on a reported value).
    groups : DataFrame
        One row per profile: ``id, endpoint`` and ``dose, dose_level, disease`` when the
        data have them.
    points : DataFrame
        Every post-dose sample with ``conc_used`` (the value on the AUC curve, NaN if
        dropped), ``lz_candidate`` and ``lz_used`` (in the chosen lambda_z fit).
    options : dict
        The options used.
    """

    table: pd.DataFrame
    groups: pd.DataFrame
    points: pd.DataFrame
    options: dict = field(default_factory=dict)
    wide: pd.DataFrame | None = field(default=None, repr=False)

    def to_wide(self) -> pd.DataFrame:
        """One row per (id, endpoint) with the profile columns and one column per parameter.

        Returns
        -------
        DataFrame
            AUC intervals are named ``AUCINT_<start>_<end>`` (e.g. ``AUCINT_0_28``).
        """
        if self.wide is not None:
            return self.wide.copy()
        return to_wide(self.table, self.groups)

    def __repr__(self) -> str:
        return (f"<NCAResult: {len(self.groups)} profiles, "
                f"{self.table['PPTESTCD'].nunique()} parameters>")


def nca(data: pd.DataFrame, *, endpoint: str | Sequence[str] | None = None,
        auc_method: str = "linear-log", dosing: str = "cart", blq: BLQRule | None = None,
        intervals: Sequence[tuple[float, float]] | None = None, extrapolate: bool = False,
        min_points: int = 3, r2adj_tol: float = 1e-4, min_r2adj: float | None = None,
        lz_include: pd.DataFrame | None = None, lz_exclude: pd.DataFrame | None = None,
        cart: bool | None = None, early_end: float = 28.0, min_quantified: int = 2,
        time_unit: str = "day", conc_unit: str | None = None) -> NCAResult:
    """Non-compartmental analysis of every (id, endpoint) profile.

    Parameters
    ----------
    data : DataFrame
        Long table with ``id, time, dv``; ``endpoint, unit, cens, mdv, dose, dose_level,
        disease`` are used when present (``cens == 1``: BLQ with ``dv == lloq``).
    endpoint : str or sequence of str, optional
        Analyse only these endpoints.
    auc_method : {"linear-log", "linear"}, default "linear-log"
        Linear-up/log-down or linear trapezoidal.
    dosing : {"cart", "extravascular", "iv_bolus"}, default "cart"
        Sets C(0) and whether Cmax may enter lambda_z (only for ``"iv_bolus"``).
    blq : BLQRule, optional
        BLQ handling; default ``BLQRule()`` (CAR-T defaults, see :mod:`carkinetics.nca.blq`).
    intervals : sequence of (start, end), optional
        AUC intervals (``AUCINT``) in addition to the CAR-T ones (0-28 and 0-84 when
        ``cart``).
    extrapolate : bool, default False
        Extrapolate interval AUCs after the last usable concentration with lambda_z.
    min_points : int, default 3
        Fewest points in a best-fit lambda_z regression.
    r2adj_tol : float, default 1e-4
        Fits within this of the best adjusted R^2 count as ties; the most points wins.
    min_r2adj : float, optional
        Report a best-fit lambda_z (and what depends on it) only if its adjusted R^2
        reaches this (points chosen by hand are not held to it).
    lz_include, lz_exclude : DataFrame, optional
        Samples (columns ``id, time`` and optionally ``endpoint``) to use exactly for
        lambda_z in their profile, or to keep out of the best-fit search.
    cart : bool, optional
        Compute CAR-T parameters and intervals; default: ``dosing == "cart"``.
    early_end : float, default 28.0
        End of the early-decline window (CAR-T).
    min_quantified : int, default 2
        Profiles with fewer quantified post-dose samples get every parameter NaN.
    time_unit : str, default "day"
        Unit of ``time`` (for the output units).
    conc_unit : str, optional
        Unit of ``dv``; default from the ``unit`` column (one per endpoint), else none.

    Returns
    -------
    NCAResult
        ``.table`` (long), ``.to_wide()``, ``.points``, ``.groups``.

    Raises
    ------
    DataError
        Listing every problem in ``data`` (duplicate times within a profile, negative or
        non-finite values, unknown censoring codes, mixed units, bad manual points).
    ValueError
        On an invalid option.

    Examples
    --------
    >>> d = pd.DataFrame({"id": 1, "time": [0, 1, 2, 4, 8, 12.0],
    ...                   "dv": [0, 8, 10, 6, 3, 1.5]})
    >>> r = nca(d, dosing="extravascular", auc_method="linear")
    >>> w = r.to_wide()
    >>> float(w["CMAX"].iloc[0]), float(w["AUCLST"].iloc[0]), int(w["LAMZNPT"].iloc[0])
    (10.0, 56.0, 3)
    """
    check_option("auc_method", auc_method, AUC_METHODS)
    check_option("dosing", dosing, DOSING)
    blq = BLQRule() if blq is None else blq
    if not isinstance(blq, BLQRule):
        raise TypeError(f"Invalid blq of type {type(blq).__name__}; expected a BLQRule.")
    cart = dosing == "cart" if cart is None else bool(cart)
    if cart and time_unit not in ("day", "days", "d"):
        raise ValueError(f"Invalid time_unit={time_unit!r} with CAR-T parameters: they use days "
                         "since the infusion (AUC0-28d, early_end); convert time to days or "
                         "pass cart=False.")
    if not (np.isfinite(early_end) and early_end > 0):
        raise ValueError(f"Invalid early_end={early_end!r}; expected a positive number of days.")
    ivs = _intervals(intervals, cart)
    if min_quantified < 1:
        raise ValueError(f"Invalid min_quantified={min_quantified}; expected >= 1.")
    prof = prepare(data, endpoint=endpoint, conc_unit=conc_unit)
    n, g, t, c, cens = prof.n, prof.g, prof.t, prof.c, prof.cens
    q = (cens != 1) & (c > 0)
    nq = np.bincount(g, weights=q, minlength=n).astype(np.int64)
    cmax = _seg.gmax(g[q], c[q], n)
    cmax[np.isinf(cmax)] = np.nan
    i_tmax = _seg.first_where(g, q & (c == cmax[g]), n)
    i_last = _seg.last_where(g, q, n)
    i_first = _seg.first_where(g, q, n)
    tmax, tlast, clast, t_firstq = (_take(t, i_tmax), _take(t, i_last), _take(c, i_last),
                                    _take(t, i_first))
    keep, value = apply_blq(blq, g, t, c, cens == 1, t_firstq, tlast, tmax)
    curve, c0 = _curve(prof, keep, value, q, dosing, auc_method)

    incl = match_points(prof, lz_include, "lz_include")
    excl = match_points(prof, lz_exclude, "lz_exclude")
    bad = incl & ~q
    if bad.any():
        raise DataError([f"lz_include: row {r}, time {tt:g} is not a quantified sample; fix: "
                         "list only quantified samples (cens != 1, dv > 0)."
                         for r, tt in zip(prof.row[bad], t[bad], strict=True)])
    forced = np.bincount(g, weights=incl, minlength=n) > 0
    with np.errstate(invalid="ignore"):
        after = t >= tmax[g] if dosing == "iv_bolus" else t > tmax[g]
    cand = np.where(forced[g], incl, q & after & ~excl)
    lz = best_fit(g[cand], t[cand], c[cand], n, min_points=min_points, tol=r2adj_tol,
                  forced=forced)
    lz_why = _lz_reasons(lz, forced, min_points, min_r2adj, dosing)
    lamz = np.where(lz_why == "", lz["lamz"], np.nan)

    out = Collector(n)
    note_ulq = np.where(_seg.gsum(g, (cens == -1).astype(float), n) > 0,
                        "an above-ULOQ sample counts at its ULOQ", "").astype(object)
    if dosing == "iv_bolus":
        out.add("C0", c0)
    out.add("CMAX", cmax, note=note_ulq)
    out.add("TMAX", tmax)
    out.add("CLST", clast)
    out.add("TLST", tlast)
    i_lastc = _seg.last_where(curve.g, curve.q, n)
    auclast, aumclast = _take(curve.F, i_lastc), _take(curve.FM, i_lastc)
    out.add("AUCLST", auclast)
    out.add("AUCALL", curve.F[curve.end])
    out.add("AUMCLST", aumclast)
    manual = np.where(forced, "points chosen by hand (lz_include)", "").astype(object)
    with np.errstate(divide="ignore", invalid="ignore"):
        out.add("LAMZ", lamz, lz_why, manual)
        out.add("LAMZHL", LN2 / lamz, lz_why)
        out.add("LAMZNPT", np.where(lz_why == "", lz["npt"], np.nan), lz_why)
        out.add("LAMZLL", lz["tlo"], lz_why)
        out.add("LAMZUL", lz["thi"], lz_why)
        out.add("R2", lz["r2"], lz_why)
        two = (lz_why == "") & forced & (lz["npt"] == 2)
        out.add("R2ADJ", lz["r2adj"], np.where(two, "2 points: adjusted R^2 undefined", lz_why))
        clstp = np.exp(lz["intercept"] - lamz * tlast)
        aucifo = auclast + clast / lamz
        aucifp = auclast + clstp / lamz
        out.add("CLSTP", clstp, lz_why)
        out.add("AUCIFO", aucifo, lz_why)
        out.add("AUCIFP", aucifp, lz_why)
        peo = 100.0 * (aucifo - auclast) / aucifo
        out.add("AUCPEO", peo, lz_why,
                np.where(peo > 20, "more than 20% of AUCinf extrapolated", "").astype(object))
        out.add("AUCPEP", 100.0 * (aucifp - auclast) / aucifp, lz_why)
        out.add("AUMCIFO", aumclast + clast * tlast / lamz + clast / lamz**2, lz_why)
    for a, b in ivs:
        _interval(out, curve, a, b, lamz, lz_why, extrapolate)
    if cart:
        for code, (val, why) in cart_parameters(g, t, c, cens, n, cmax=cmax, tmax=tmax,
                                                t_firstq=t_firstq, early_end=early_end).items():
            out.add(code, val, why)
    few = nq < min_quantified
    reason = np.full(n, "", dtype=object)
    for i in np.flatnonzero(few):
        reason[i] = f"fewer than {min_quantified} quantified post-dose samples ({nq[i]})"
    out.override(few, reason)
    table = out.long(prof.groups, prof.unit, time_unit)
    points = _points(prof, keep, value, cand, lz["used"])
    options = {"auc_method": auc_method, "dosing": dosing, "blq": blq.describe(),
               "intervals": ivs, "extrapolate": extrapolate, "min_points": min_points,
               "r2adj_tol": r2adj_tol, "min_r2adj": min_r2adj, "cart": cart,
               "early_end": early_end, "min_quantified": min_quantified,
               "time_unit": time_unit}
    groups = prof.groups.assign(unit=prof.unit)
    return NCAResult(table=table, groups=groups, points=points, options=options,
                     wide=out.wide(groups))


def _take(x: NDArray, idx: NDArray) -> NDArray:
    out = np.full(idx.size, np.nan)
    ok = idx >= 0
    out[ok] = x[idx[ok]]
    return out


def _intervals(intervals, cart: bool) -> list[tuple[float, float]]:
    ivs = list(CART_INTERVALS) if cart else []
    for iv in intervals or ():
        try:
            a, b = (float(v) for v in iv)
        except (TypeError, ValueError):
            raise ValueError(f"Invalid interval {iv!r}; expected (start, end) numbers.") from None
        if not (np.isfinite(a) and np.isfinite(b) and 0 <= a < b):
            raise ValueError(f"Invalid interval {iv!r}; expected 0 <= start < end, both "
                             "finite (time since dosing).")
        if (a, b) not in ivs:
            ivs.append((a, b))
    return ivs


def _curve(prof: Profiles, keep: NDArray, value: NDArray, q: NDArray, dosing: str,
           method: str) -> tuple[Curve, NDArray]:
    """The AUC curve: kept samples plus C(0) where time 0 was not sampled."""
    n = prof.n
    kg, kt, kc, kq = prof.g[keep], prof.t[keep], value[keep], q[keep]
    has0 = np.bincount(kg[kt == 0], minlength=n) > 0
    c0 = np.zeros(n)
    i1 = _seg.first_where(kg, np.ones(kg.size, dtype=bool), n)
    if dosing == "iv_bolus":
        i2 = np.where((i1 >= 0) & (i1 + 1 < kg.size), i1 + 1, -1)
        if kg.size:
            i2[(i2 >= 0) & (kg[np.maximum(i2, 0)] != np.arange(n))] = -1
        t1, c1, t2, c2 = _take(kt, i1), _take(kc, i1), _take(kt, i2), _take(kc, i2)
        with np.errstate(divide="ignore", invalid="ignore"):
            back = c1 * (c1 / c2) ** (t1 / (t2 - t1))
        c0 = np.where((c2 > 0) & (c1 > c2), back, np.nan_to_num(c1))
        c0 = np.where(has0, _take(kc, i1), c0)
    start, _, _ = _seg.positions(kg, n)
    ins = np.flatnonzero(~has0)
    at = start[ins]
    cg = np.insert(kg, at, ins)
    curve = Curve(g=cg, t=np.insert(kt, at, 0.0), c=np.insert(kc, at, c0[ins]),
                  q=np.insert(kq, at, False), n=n, method=method)
    return curve, c0


def _lz_reasons(lz: dict, forced: NDArray, min_points: int, min_r2adj: float | None,
                dosing: str) -> NDArray:
    n = forced.size
    where = "at or after Tmax" if dosing == "iv_bolus" else "after Tmax"
    why = np.full(n, "", dtype=object)
    st = lz["status"]
    for i in np.flatnonzero((st == 1) & ~forced):
        why[i] = (f"lambda_z: fewer than {min_points} quantified samples {where} "
                  f"({lz['ncand'][i]})")
    why[(st == 1) & forced] = "lambda_z: fewer than 2 points included by hand"
    why[st == 2] = "lambda_z: no terminal phase (no fit with a negative slope)"
    if min_r2adj is not None:
        low = (st == 0) & ~forced & ~(lz["r2adj"] >= min_r2adj)  # not for points by hand
        for i in np.flatnonzero(low):
            why[i] = f"lambda_z: adjusted R^2 {lz['r2adj'][i]:.4f} below min_r2adj {min_r2adj:g}"
    return why


def _interval(out: Collector, curve: Curve, a: float, b: float, lamz: NDArray,
              lz_why: NDArray, extrapolate: bool) -> None:
    fa, beyond_a, _ = curve.at(a, lamz, extrapolate)
    fb, beyond_b, _ = curve.at(b, lamz, extrapolate)
    val = fb - fa
    t_end = curve.t[curve.end]
    why = np.full(curve.n, "", dtype=object)
    note = np.full(curve.n, "", dtype=object)
    ends_pos = curve.c[curve.end] > 0
    for i in np.flatnonzero(beyond_b):
        if not extrapolate:
            why[i] = (f"interval end {b:g} is after the last usable concentration (time "
                      f"{t_end[i]:g}); pass extrapolate=True to extrapolate with lambda_z")
        elif ends_pos[i] and np.isnan(lamz[i]):
            why[i] = f"extrapolation after time {t_end[i]:g} needs lambda_z: {lz_why[i]}"
        elif ends_pos[i]:
            note[i] = f"extrapolated with lambda_z after time {t_end[i]:g}"
        else:
            note[i] = f"0 after time {t_end[i]:g} (the curve ends at a BLQ set to 0)"
    out.add("AUCINT", val, why, note, start=a, end=b)


def _points(prof: Profiles, keep: NDArray, value: NDArray, cand: NDArray,
            used: NDArray) -> pd.DataFrame:
    lz_used = np.zeros(prof.t.size, dtype=bool)
    lz_used[np.flatnonzero(cand)[used]] = True
    return pd.DataFrame({
        "id": prof.groups["id"].to_numpy(dtype=object)[prof.g],
        "endpoint": prof.groups["endpoint"].to_numpy(dtype=object)[prof.g],
        "time": prof.t, "dv": prof.c, "cens": prof.cens, "row": prof.row,
        "conc_used": np.where(keep, value, np.nan), "lz_candidate": cand, "lz_used": lz_used,
    })
