"""Independent per-row reference likelihoods written with scipy.stats.norm (no carkinetics code).

Every row is handled in a plain Python loop, straight from Beal (2001) / Ahn (2008), so the
vectorised implementation is checked against a second, deliberately naive, derivation.
"""

import math

from scipy.stats import norm


def _log(v):
    return math.log(v) if v > 0 else -math.inf


def _ident(v):
    return v


def obs_dist(kind, pred, sigma):
    """Frozen normal on the observation scale and the map from dv to that scale."""
    if kind == "log_additive":
        return norm(math.log(pred), sigma), _log
    ident = _ident
    if kind == "proportional":
        return norm(pred, sigma * abs(pred)), ident
    if kind == "additive":
        return norm(pred, sigma), ident
    sa, sp = sigma
    return norm(pred, math.sqrt(sa * sa + (sp * pred) ** 2)), ident


def ref_row(kind, dv, pred, cens, sigma, method, *, lloq=math.nan, limit=math.nan, first=False,
            jacobian=False):
    """Log-likelihood of one row."""
    dist, T = obs_dist(kind, pred, sigma)

    def logpdf(v):
        lp = dist.logpdf(T(v))
        if jacobian and kind == "log_additive":
            lp -= math.log(v)
        return lp

    has_limit = math.isfinite(limit)
    if method == "m2":
        lognorm_c = dist.logsf(T(lloq)) if math.isfinite(lloq) else 0.0
    elif method == "m4":
        lognorm_c = dist.logsf(T(0.0))
    else:
        lognorm_c = 0.0

    if cens == 0:
        return logpdf(dv) - lognorm_c
    if cens == -1:
        if has_limit:
            return math.log(dist.cdf(T(limit)) - dist.cdf(T(dv))) - lognorm_c
        return dist.logsf(T(dv)) - lognorm_c
    # BLQ
    if method in ("m1", "m2"):
        return 0.0
    if method == "m3":
        if has_limit:
            return math.log(dist.cdf(T(dv)) - dist.cdf(T(limit)))
        return dist.logcdf(T(dv))
    if method == "m4":
        lower = max(limit, 0.0) if has_limit else 0.0
        return math.log(dist.cdf(T(dv)) - dist.cdf(T(lower))) - lognorm_c
    if method == "m5":
        return logpdf(dv / 2.0)
    if method == "m6":
        return logpdf(dv / 2.0) if first else 0.0
    if method == "m7":
        return logpdf(0.0)
    raise AssertionError(method)


def ref_loglik(kind, rows, sigmas, method, *, jacobian=False):
    """Loop over row dicts; ``sigmas`` holds one sigma (or pair) per row."""
    return [
        ref_row(kind, r["dv"], r["pred"], r["cens"], s, method, lloq=r["lloq"],
                limit=r["limit"], first=r["first"], jacobian=jacobian)
        for r, s in zip(rows, sigmas, strict=True)
    ]
