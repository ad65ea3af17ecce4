"""Batched optimisation on a :class:`~carkinetics.fitting._problem.Problem` (internal).

:func:`lm_batch` runs a projected Levenberg-Marquardt iteration on many parameter vectors at
once (every start of a multi-start, every point of a profile): each iteration is ONE
evaluation of the batched objective, i.e. one ``loglik_obs`` call per error model, however
many vectors are in flight. Its curvature is the PSD Gauss-Newton-type matrix of
:meth:`Problem.ofv_grad`; its gradient is exact. The final fit is polished by lmfit
(``carkinetics.fitting.individual``); this module only explores.

:func:`profile_intervals` computes profile-likelihood limits: the profile OFV is evaluated
on a grid of fixed values of each parameter (all grids of all parameters in one batch),
the crossing of the chi-square threshold is interpolated on the ``sqrt(delta OFV)`` scale
(exact for a quadratic profile) and refined twice by re-profiling at the interpolated
point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from carkinetics.fitting._problem import Problem

__all__ = ["LMOutcome", "lm_batch", "profile_intervals"]

_STALL = 5
_AGREE = 3
_GRID = np.array([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.5, 8.0])


@dataclass
class LMOutcome:
    """Result of :func:`lm_batch` for each vector of the batch."""

    x: NDArray[np.float64]
    ofv: NDArray[np.float64]
    grad: NDArray[np.float64]
    converged: NDArray[np.bool_]
    n_iter: NDArray[np.int64]
    n_calls: int
    ofv_start: NDArray[np.float64]
    pruned: NDArray[np.bool_]


def _solve(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    try:
        return np.linalg.solve(a, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.stack([np.linalg.lstsq(ai, bi, rcond=None)[0] for ai, bi in zip(a, b,
                                                                                   strict=True)])


def lm_batch(problem: Problem, x0: NDArray[np.float64], free: NDArray[np.bool_], *,
             max_iter: int = 100, tol: float = 1e-6, prune: float | None = None,
             prune_after: int = 6, owner: NDArray[np.int64] | None = None) -> LMOutcome:
    """Minimise the OFV from each row of ``x0`` (B, p), moving only ``free`` (B, p) entries.

    Bounds ``problem.lo``/``problem.hi`` are handled by projection with an active set
    (a coordinate at a bound whose gradient points outwards is frozen for that step). A row
    has converged when its Newton decrement ``g' G^-1 g`` on the free, inactive
    coordinates falls below ``tol`` (OFV units), or when the OFV has improved by less than
    ``tol`` over the last ``_STALL`` iterations while the steps have shrunk below 1e-4 (a
    minimum on a kink of the objective, e.g. the piecewise model with ``tmax`` on a sample
    time, has no zero gradient). With ``prune``, a row still running after
    ``prune_after`` iterations whose OFV exceeds the best converged OFV by more than
    ``prune`` is abandoned (``pruned``; it cannot win and would only prolong the batch), and
    so is every row still running once ``_AGREE`` rows have converged to the best OFV
    (within 0.01): the best optimum is then confirmed.

    With a stacked problem, ``owner`` (B,) names the unit of each row: its bounds are that
    unit's, and pruning compares rows of the same unit only. Each row's path depends only
    on its own start, so the outcome does not depend on what else is in the batch.
    """
    b = x0.shape[0]
    owner = problem.owner_of(b, owner)
    lo, hi = problem.lo_u[owner], problem.hi_u[owner]
    x = np.clip(np.array(x0, dtype=float), lo, hi)
    free = np.broadcast_to(free, x.shape)
    p = x.shape[1]
    n_units = int(owner.max()) + 1 if b else 0
    ofv, g, cur = problem.ofv_grad(x, curvature=True, owner=owner)
    ofv_start = ofv.copy()
    pruned = np.zeros(b, dtype=bool)
    calls = 1
    lam = np.full(b, 1e-3)
    nu = np.full(b, 2.0)
    done = ~np.isfinite(ofv)
    conv = np.zeros(b, dtype=bool)
    iters = np.zeros(b, dtype=np.int64)
    eye = np.eye(p)
    hist = np.repeat(ofv[:, None], _STALL, axis=1)
    for _ in range(max_iter):
        act = np.flatnonzero(~done)
        if act.size == 0:
            break
        xa, ga, ca = x[act], g[act], cur[act]
        la, ha = lo[act], hi[act]
        blocked = (~free[act]) | ((xa <= la + 1e-12) & (ga > 0)) | ((xa >= ha - 1e-12) & (ga < 0))
        keep = ~blocked
        gm = np.where(keep, ga, 0.0)
        cm = ca * (keep[:, :, None] & keep[:, None, :]) + eye * blocked[:, None, :]
        diag = np.einsum("bii->bi", cm)
        dscale = np.maximum(diag, 1e-9 * diag.max(axis=1, keepdims=True) + 1e-12)
        newton = _solve(cm + 1e-10 * dscale[:, :, None] * eye, gm)
        dec = np.einsum("bi,bi->b", gm, newton)
        small = dec < tol
        conv[act[small]] = True
        done[act[small]] = True
        go = ~small
        if not go.any():
            break
        act, xa, gm, cm, dscale = act[go], xa[go], gm[go], cm[go], dscale[go]
        step = _solve(cm + lam[act][:, None, None] * dscale[:, :, None] * eye, -gm)
        xt = np.clip(xa + step, la[go], ha[go])
        s = xt - xa
        ft, gt, ct = problem.ofv_grad(xt, curvature=True, owner=owner[act])
        calls += 1
        iters[act] += 1
        pred = -(np.einsum("bi,bi->b", gm, s) + 0.5 * np.einsum("bi,bij,bj->b", s, cm, s))
        actual = ofv[act] - ft
        acc = np.isfinite(ft) & (actual >= 0.0)
        rho = np.where(pred > 0, actual / np.where(pred > 0, pred, 1.0), 0.0)
        ia, ir = act[acc], act[~acc]
        x[ia], ofv[ia], g[ia], cur[ia] = xt[acc], ft[acc], gt[acc], ct[acc]
        lam[ia] *= np.maximum(1.0 / 3.0, 1.0 - (2.0 * rho[acc] - 1.0) ** 3)
        nu[ia] = 2.0
        lam[ir] *= nu[ir]
        nu[ir] *= 2.0
        stuck = act[(lam[act] > 1e12) | (acc & (np.abs(s).max(axis=1) < 1e-12))]
        done[stuck] = True
        hist[act] = np.column_stack([hist[act, 1:], ofv[act]])
        tiny = np.abs(s).max(axis=1) < 1e-4
        stall = act[(iters[act] >= _STALL) & (hist[act, 0] - ofv[act] < tol) & tiny]
        conv[stall] = True
        done[stall] = True
        if prune is not None and conv.any():
            best = np.full(n_units, np.inf)
            np.minimum.at(best, owner[conv], ofv[conv])
            bo = best[owner[act]]
            late = (iters[act] >= prune_after) & (ofv[act] > bo + prune)
            agree = np.bincount(owner[conv & (ofv <= best[owner] + 0.01)], minlength=n_units)
            late |= (iters[act] >= prune_after) & (agree[owner[act]] >= _AGREE)  # confirmed
            done[act[late]] = True
            pruned[act[late]] = True
    return LMOutcome(x=x, ofv=ofv, grad=g, converged=conv, n_iter=iters, n_calls=calls,
                     ofv_start=ofv_start, pruned=pruned)


def profile_intervals(problem: Problem, x_hat: NDArray[np.float64], ofv_hat: float,
                      which: list[int], se: NDArray[np.float64], *, level: float = 0.95,
                      max_iter: int = 60) -> tuple[dict[int, tuple[float, float]], list[dict]]:
    """Profile-likelihood limits (internal scale) of the parameters ``which``.

    Returns
    -------
    limits : dict
        Parameter index -> (lower, upper) on the internal scale; NaN where the profile does
        not reach the threshold before the bound of the practical box.
    trace : list of dict
        Every profiled point: ``index, value (internal), delta_ofv``.
    """
    q = float(stats.chi2.ppf(level, 1))
    lo, hi = problem.lo, problem.hi
    free0 = problem.free.copy()
    pts, meta = [], []
    for j in which:
        s = se[j] if np.isfinite(se[j]) and se[j] > 0 else 0.5
        s = min(s, 2.0)
        for side in (-1, 1):
            for k, o in enumerate(_GRID):
                v = np.clip(x_hat[j] + side * o * s, lo[j], hi[j])
                pts.append(v)
                meta.append((j, side, k))
    trace: list[dict] = []

    def run(values: list[float], starts: NDArray, idx: list[int]) -> NDArray[np.float64]:
        x0 = starts.copy()
        free = np.repeat(free0[None, :], len(values), axis=0)
        for r, (j, v) in enumerate(zip(idx, values, strict=True)):
            x0[r, j] = v
            free[r, j] = False
        out = lm_batch(problem, x0, free, max_iter=max_iter, tol=1e-6)
        d = out.ofv - ofv_hat
        for j, v, dd in zip(idx, values, d, strict=True):
            trace.append({"index": j, "value": float(v), "delta_ofv": float(dd)})
        return out.x, d

    starts = np.repeat(x_hat[None, :], len(pts), axis=0)
    xs, d = run(pts, starts, [m[0] for m in meta])
    limits: dict[int, list[float]] = {j: [np.nan, np.nan] for j in which}
    refine = []  # (j, side, x_in, d_in, x_out, d_out, start)
    for j in which:
        for si, side in enumerate((-1, 1)):
            rows = [r for r, m in enumerate(meta) if m[0] == j and m[1] == side]
            prev_x, prev_d, prev_start = x_hat[j], 0.0, x_hat
            for r in rows:
                if d[r] >= q:
                    refine.append([j, si, prev_x, prev_d, pts[r], d[r], prev_start])
                    break
                if d[r] > prev_d:
                    prev_x, prev_d, prev_start = pts[r], d[r], xs[r]
    for _ in range(2):
        if not refine:
            break
        vals = [_interp(a[2], a[3], a[4], a[5], q) for a in refine]
        starts = np.stack([a[6] for a in refine])
        xr, dr = run(vals, starts, [a[0] for a in refine])
        for a, v, xv, dv in zip(refine, vals, xr, dr, strict=True):
            if dv >= q:
                a[4], a[5] = v, dv
            else:
                a[2], a[3], a[6] = v, max(dv, 0.0), xv
    for a in refine:
        limits[a[0]][a[1]] = _interp(a[2], a[3], a[4], a[5], q)
    return {j: (v[0], v[1]) for j, v in limits.items()}, trace


def _interp(x_in: float, d_in: float, x_out: float, d_out: float, q: float) -> float:
    """Point between ``x_in`` and ``x_out`` where ``sqrt(delta)`` reaches ``sqrt(q)``."""
    a, b = np.sqrt(max(d_in, 0.0)), np.sqrt(max(d_out, 0.0))
    if not b > a:
        return float(x_out)
    f = (np.sqrt(q) - a) / (b - a)
    return float(x_in + min(max(f, 0.0), 1.0) * (x_out - x_in))
