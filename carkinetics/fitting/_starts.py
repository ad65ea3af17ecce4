"""Parameters, bounds and starting values of an individual fit (internal).

Starting values come from the data: the observed peak (Cmax, Tmax), the up-slope by
log-linear regression of the quantified samples up to the peak, the initial down-slope from
the samples within 60 days after the peak and the terminal slope and intercept from the
later ones (BLQ samples bound the decline when nothing later is quantified). Values are
given to every model parameter with a matching name (``foldx, tmax, cmax, alpha, fb, beta,
rho, r0, e0, tlag``); the others take their typical value, and the level parameter is then
rescaled so that the model passes through the observed peak.

The multi-start design is fixed: start 0 is the data-based start, start 1 the typical
values (rescaled to the observed peak), and starts 2... add to the data-based start the
points of an unscrambled Halton sequence mapped to [-1, 1] times a per-kind spread (1 on
the log/logit scale of kinetic parameters, i.e. a factor e; 0.3 for log sigmas; 1 for log
scale factors). No random number generator is involved.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import qmc

from carkinetics._validation import closest
from carkinetics.exceptions import ModelSpecError
from carkinetics.fitting._problem import ParamInfo, UnitData
from carkinetics.models.base import Model, ParameterSpec
from carkinetics.observation import ObservationModel

__all__ = ["build_parameters", "observed_summary", "design"]

#: Half-width (internal units) of the practical box around the typical value where the
#: transform sends a bound to infinity (log of 0, logit of 0 or 1).
BOX_WIDTH = 20.0
#: Lower bound of every sigma as a fraction of its typical value.
SIGMA_LOWER_FRACTION = 0.04
_SPREAD = {"kinetic": 1.0, "sigma": 0.3, "scale": 1.0}


def _obs_rows(unit: UnitData) -> tuple[NDArray, NDArray, NDArray, float]:
    """(time, dv, cens) of the assay that locates the peak, and its log scale start."""
    ref = unit.endpoints.index(unit.observation.reference)
    for k in (ref, *range(len(unit.endpoints))):
        r = unit.assay == k
        if np.any(r & (unit.cens == 0)):
            ls = unit.observation.assays[unit.endpoints[k]].log_scale
            return unit.t[r], unit.dv[r], unit.cens[r], ls
    raise ModelSpecError("no quantified row")  # prepare_unit guarantees one


def observed_summary(unit: UnitData) -> dict[str, Any]:
    """Observed peak and post-peak counts (used by the flags and the starting values)."""
    t, dv, cens, _ = _obs_rows(unit)
    q = cens == 0
    i = int(np.argmax(np.where(q, dv, -np.inf)))
    tmax = float(t[i])
    post = t > tmax
    return {
        "cmax_obs": float(dv[i]), "tmax_obs": tmax,
        "t_first": float(t.min()), "t_last": float(t.max()),
        "peak_first": bool(tmax <= t.min()), "peak_last": bool(tmax >= t.max()),
        "n_post": int(post.sum()), "n_post_q": int((post & q).sum()),
        "n_post_blq": int((post & (cens == 1)).sum()),
    }


def _clip(v: float, lo: float, hi: float) -> float:
    """``min(max(v, lo), hi)`` for Python scalars (numpy's clip costs ~5 us a call)."""
    return float(min(max(v, lo), hi))


def _slope(t: NDArray, y: NDArray) -> tuple[float, float]:
    """Least-squares slope and intercept (at t = 0) of y on t (closed form)."""
    tm, ym = float(t.sum()) / t.size, float(y.sum()) / y.size
    dt = t - tm
    b = float(dt @ (y - ym)) / float(dt @ dt)
    return b, ym - b * tm


def data_values(unit: UnitData) -> dict[str, float]:
    """Natural-scale kinetic values read off the data (see the module docstring)."""
    t, dv, cens, log_scale = _obs_rows(unit)
    ly = np.log(dv) - log_scale  # latent scale
    q = cens == 0
    i = int(np.argmax(np.where(q, ly, -np.inf)))
    tmax, lc = max(float(t[i]), 0.05), float(ly[i])
    up = q & (t <= tmax)
    rho = 0.7
    if up.sum() >= 2 and np.ptp(t[up]) > 0:
        rho = _slope(t[up], ly[up])[0]
    rho = _clip(rho, 0.05, 5.0)
    post = q & (t > tmax)
    early = post & (t <= tmax + 60.0)
    alpha = 0.1
    if early.any():
        tt, yy = np.append(t[early], tmax), np.append(ly[early], lc)
        alpha = -_slope(tt, yy)[0]
    else:
        blq = (cens == 1) & (t > tmax)
        if blq.any():
            j = int(np.argmax(blq))
            alpha = (lc - ly[j]) / max(t[j] - tmax, 1e-3)
    alpha = _clip(alpha, 0.005, 5.0)
    late = post & (t > tmax + 60.0)
    beta, fb = min(0.006, alpha / 4.0), 0.02
    if late.sum() >= 2 and np.ptp(t[late]) > 0:
        s, b = _slope(t[late] - tmax, ly[late])
        beta, fb = -s, math.exp(b - lc)
    elif late.sum() == 1:
        j = int(np.argmax(late))
        fb = math.exp(ly[j] - lc + beta * (t[j] - tmax))
    else:
        blq_late = (cens == 1) & (t > tmax + 30.0)
        if blq_late.any():
            lim = ly[blq_late] - lc + beta * (t[blq_late] - tmax)
            fb = 0.5 * math.exp(float(lim.min()))
    beta = _clip(beta, 1e-4, alpha / 2.0)
    fb = _clip(fb, 1e-4, 0.5)
    foldx = math.exp(_clip(rho * tmax, math.log(2.0), math.log(1e8)))
    cmax = math.exp(lc)
    return {"foldx": foldx, "tmax": tmax, "cmax": cmax, "alpha": alpha, "fb": fb,
            "beta": beta, "rho": math.log(foldx) / tmax, "r0": cmax / foldx,
            "e0": cmax / foldx}


def _interior(spec: ParameterSpec, value: float) -> float:
    lo, hi = spec.lower, spec.upper
    pad = 1e-6 * (hi - lo) if math.isfinite(hi - lo) else 1e-6
    return float(min(max(value, lo + pad), hi - pad))


def _rescale_level(model: Model, values: dict[str, float], t_peak: float, lc: float) -> None:
    """Scale the level parameter so that the model passes through the observed peak."""
    p = {k: np.asarray(v) for k, v in values.items()}
    with np.errstate(all="ignore"):
        lp = float(np.asarray(model.log_predict(np.asarray(max(t_peak, 0.0)), p)))
    if math.isfinite(lp):
        spec = model.spec(model.level_param)
        values[model.level_param] = _interior(spec, values[model.level_param] * math.exp(lc - lp))


@functools.lru_cache(maxsize=256)
def _box(spec: ParameterSpec, lower: float, upper: float) -> tuple[float, float]:
    """Internal bounds: transformed natural bounds within the practical box."""
    with np.errstate(divide="ignore"):
        lo, hi = float(spec.to_internal(lower)), float(spec.to_internal(upper))
    typ = float(spec.to_internal(spec.typical))
    if not math.isfinite(lo):
        lo = typ - BOX_WIDTH
    elif spec.open_lower:  # the bound itself is excluded: stay strictly inside
        lo += 1e-9 * max(1.0, abs(lo))
    if not math.isfinite(hi):
        hi = typ + BOX_WIDTH
    elif spec.open_upper:
        hi -= 1e-9 * max(1.0, abs(hi))
    return lo, hi


def _check_names(kind: str, given: Mapping[str, Any], names: list[str]) -> None:
    unknown = [k for k in given if k not in names]
    if unknown:
        raise ModelSpecError(f"Unknown parameter {unknown[0]!r} in {kind}; expected names "
                             f"among {names}." + closest(unknown[0], names))


@functools.lru_cache(maxsize=64)
def _observation_specs(obs: ObservationModel) -> tuple[tuple[ParameterSpec, str, int, int], ...]:
    """``(spec, kind, assay, sigma slot)`` of the observation parameters (cached per model)."""
    specs: list[tuple[ParameterSpec, str, int, int]] = []
    for k, (ep, assay) in enumerate(obs.assays.items()):
        for j, s in enumerate(assay.param_specs(include_scale=False)):
            lower = max(s.lower, SIGMA_LOWER_FRACTION * s.typical)
            specs.append((ParameterSpec(s.name, s.unit, s.typical, lower, s.upper, "log",
                                        s.description, s.source), "sigma", k, j))
        if ep != obs.reference:
            s = assay.param_specs()[-1]
            specs.append((s, "scale", k, 0))
    return tuple(specs)


def build_parameters(model: Model, unit: UnitData, *, start: Mapping[str, float] | None = None,
                     bounds: Mapping[str, tuple[float, float]] | None = None,
                     fixed: Mapping[str, float] | None = None
                     ) -> tuple[list[ParamInfo], NDArray[np.float64], NDArray[np.float64]]:
    """ParamInfos, data-based start and typical start (both internal) of one fit.

    Raises
    ------
    ModelSpecError
        For unknown names, bounds outside the model's, or a given start or fixed value
        outside its bounds.
    """
    start, bounds, fixed = dict(start or {}), dict(bounds or {}), dict(fixed or {})
    specs = [(s, "kinetic", -1, 0) for s in model.params]
    specs += _observation_specs(unit.observation)
    names = [s.name for s, *_ in specs]
    for kind, given in (("start", start), ("bounds", bounds), ("fixed", fixed)):
        _check_names(kind, given, names)

    data = data_values(unit)
    if "tlag" in model.param_names:
        data["tlag"] = min(model.spec("tlag").typical, 0.3 * data["tmax"])
    lc = math.log(data["cmax"])
    kin_data = {s.name: _interior(s, data.get(s.name, s.typical)) for s in model.params}
    _rescale_level(model, kin_data, data["tmax"], lc)
    kin_typ = {s.name: s.typical for s in model.params}
    _rescale_level(model, kin_typ, data["tmax"], lc)

    infos, x_data, x_typ = [], [], []
    for spec, kind, k, j in specs:
        lo_n, hi_n = spec.lower, spec.upper
        if spec.name in bounds:
            try:
                lo_n, hi_n = (float(v) for v in bounds[spec.name])
            except (TypeError, ValueError):
                raise ModelSpecError(f"Invalid bounds[{spec.name!r}]={bounds[spec.name]!r}; "
                                     "expected a pair (lower, upper).") from None
            if not (spec.lower <= lo_n < hi_n <= spec.upper):
                raise ModelSpecError(
                    f"Invalid bounds[{spec.name!r}]=({lo_n!r}, {hi_n!r}); expected lower < "
                    f"upper within the parameter's own bounds [{spec.lower}, {spec.upper}] "
                    f"{spec.unit}.")
        lo, hi = _box(spec, lo_n, hi_n)
        if kind == "kinetic":
            vd, vt = kin_data[spec.name], kin_typ[spec.name]
        elif kind == "sigma":
            vd = vt = spec.typical
        else:
            vd = vt = _scale_start(unit, k, spec.typical)
        is_fixed = spec.name in fixed
        for label, given in (("start", start), ("fixed", fixed)):
            if spec.name in given:
                v = float(given[spec.name])
                xv = float(spec.to_internal(v)) if spec.contains(v) else math.nan
                if not (lo <= xv <= hi):
                    raise ModelSpecError(
                        f"Invalid {label} {spec.name}={v!r}: outside its bounds "
                        f"({lo_n}, {hi_n}) {spec.unit}. Widen bounds[{spec.name!r}] or "
                        "choose a value inside them.")
                vd = vt = v
        xd = _clip(float(spec.to_internal(vd)), lo, hi)
        xt = _clip(float(spec.to_internal(vt)), lo, hi)
        infos.append(ParamInfo(spec.name, spec, kind, k, lo, hi, is_fixed, j))
        x_data.append(xd)
        x_typ.append(xt if not is_fixed else xd)
    return infos, np.array(x_data), np.array(x_typ)


def _scale_start(unit: UnitData, k: int, default: float) -> float:
    """Start of ``log_scale`` of assay ``k``: median log ratio to the reference at paired times."""
    fr = unit.frame
    ep, ref = unit.endpoints[k], unit.observation.reference
    a = fr[(fr["endpoint"] == ep) & (fr["cens"] == 0)].groupby("time")["dv"].mean()
    b = fr[(fr["endpoint"] == ref) & (fr["cens"] == 0)].groupby("time")["dv"].mean()
    both = a.index.intersection(b.index)
    if len(both):
        return float(np.median(np.log(a[both].to_numpy()) - np.log(b[both].to_numpy())))
    if len(a) and len(b):
        return float(np.log(a.max()) - np.log(b.max()))
    return default


@functools.lru_cache(maxsize=32)
def _halton(d: int, n_starts: int) -> NDArray[np.float64]:
    """Points 1 .. n_starts - 2 of the unscrambled Halton sequence in d dimensions."""
    u = qmc.Halton(d=d, scramble=False).random(n_starts - 1)[1:]
    u.flags.writeable = False
    return u


def design(x_data: NDArray[np.float64], x_typ: NDArray[np.float64], infos: list[ParamInfo],
           n_starts: int) -> tuple[NDArray[np.float64], list[str]]:
    """The fixed multi-start design (see the module docstring), shape (n_starts, p)."""
    lo = np.array([q.lower for q in infos])
    hi = np.array([q.upper for q in infos])
    free = np.array([not q.fixed for q in infos])
    spread = np.array([_SPREAD[q.kind] for q in infos]) * free
    pad = 1e-6 * (hi - lo)
    rows, origin = [x_data], ["data"]
    if n_starts > 1:
        rows.append(x_typ)
        origin.append("typical")
    if n_starts > 2:
        for v in _halton(len(infos), n_starts):
            rows.append(x_data + spread * (2.0 * v - 1.0))
            origin.append("design")
    x = np.clip(np.array(rows[:max(n_starts, 1)]), lo + pad, hi - pad)
    return x, origin[:max(n_starts, 1)]
