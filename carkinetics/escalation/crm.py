"""Continual reassessment method (O'Quigley, Pepe & Fisher 1990), Bayesian, one parameter.

Models (as in Cheung's dfcrm):

* empiric (power): ``p_i(a) = s_i ** exp(a)``;
* logistic: ``p_i(a) = 1 / (1 + exp(-(c + exp(a) x_i)))`` with ``x_i = logit(s_i) - c``, c = 3;

``s`` is the skeleton and ``a ~ N(0, 1.34)``. The posterior mean of ``a`` is computed by
Gauss-Legendre quadrature (600 nodes) on [-10, 10] (prior sd 1.16, so the truncated prior mass is
below 1e-17) and the dose-toxicity estimate is the model at the posterior mean (dfcrm's
plug-in); the
posterior mean of every ``p_i`` is reported too. The recommended dose is the one whose estimate
is closest to the target, with no skipping of untried doses upward (at most one level above the
current dose) and coherence (no escalation right after a cohort with a DLT). The skeleton can
be built from indifference intervals (Lee & Cheung 2009): :func:`crm_skeleton`.
"""

from __future__ import annotations

import numpy as np

from carkinetics._validation import check_option
from carkinetics.escalation.base import (
    Decision,
    Design,
    ParticipantPool,
    TrialState,
    check_probabilities,
    check_target,
)
from carkinetics.exceptions import ModelSpecError

__all__ = ["CRM", "crm_skeleton", "crm_posterior", "CRM_MODELS"]

CRM_MODELS = ("empiric", "logistic")
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(600)
_A = 10.0 * _NODES
_W = 10.0 * _WEIGHTS


def crm_skeleton(halfwidth: float, target: float, nu: int, n_levels: int,
                 model: str = "empiric", intercept: float = 3.0) -> np.ndarray:
    """Skeleton from indifference intervals (Lee & Cheung 2009; dfcrm ``getprior``).

    Dose ``nu`` (1-based, the prior guess of the MTD) gets the target; neighbouring skeleton
    values are chosen so that, where the model switches its recommendation between adjacent
    doses, their toxicity probabilities are exactly ``target - halfwidth`` and
    ``target + halfwidth``.

    Parameters
    ----------
    halfwidth : float
        Half-width delta of the indifference interval (0 < delta < min(target, 1 - target)).
    target : float
    nu : int
        Prior MTD, 1-based.
    n_levels : int
    model : {"empiric", "logistic"}
    intercept : float, default 3
        Intercept c of the logistic model.

    Returns
    -------
    ndarray
        Skeleton, increasing.

    Examples
    --------
    >>> s = crm_skeleton(0.05, 0.25, 3, 5)
    >>> bool(abs(s[2] - 0.25) < 1e-12 and np.all(np.diff(s) > 0))
    True
    """
    target = check_target(target)
    model = check_option("model", model, CRM_MODELS, ModelSpecError)
    if not 0 < halfwidth < min(target, 1 - target):
        raise ModelSpecError(f"halfwidth={halfwidth!r}: expected 0 < halfwidth < "
                             f"{min(target, 1 - target)}.")
    if not 1 <= int(nu) <= int(n_levels):
        raise ModelSpecError(f"nu={nu!r}: expected a dose level in 1..{n_levels}.")
    lo, hi = target - halfwidth, target + halfwidth
    k0 = int(nu) - 1
    if model == "empiric":
        # p_i(a) = s_i^exp(a); work with log s.
        ls = np.empty(int(n_levels))
        ls[k0] = np.log(target)
        for k in range(k0, 0, -1):
            e = np.log(hi) / ls[k]  # exp(a) where dose k is at target + delta
            ls[k - 1] = np.log(lo) / e  # dose k-1 at target - delta there
        for k in range(k0, int(n_levels) - 1):
            e = np.log(lo) / ls[k]
            ls[k + 1] = np.log(hi) / e
        return np.exp(ls)
    c = float(intercept)
    x = np.empty(int(n_levels))
    x[k0] = np.log(target / (1 - target)) - c

    def lg(p):
        return np.log(p / (1 - p)) - c

    for k in range(k0, 0, -1):
        e = lg(hi) / x[k]
        x[k - 1] = lg(lo) / e
    for k in range(k0, int(n_levels) - 1):
        e = lg(lo) / x[k]
        x[k + 1] = lg(hi) / e
    return 1.0 / (1.0 + np.exp(-(c + x)))


def _prob(a: np.ndarray, skeleton: np.ndarray, model: str, intercept: float) -> np.ndarray:
    """p[..., dose] at parameter values a (any shape)."""
    return np.exp(_logp(a, skeleton, model, intercept)[0])


def _logp(a: np.ndarray, skeleton: np.ndarray, model: str,
          intercept: float) -> tuple[np.ndarray, np.ndarray]:
    """Log p and log(1 - p), computed without underflow, shape (G, D)."""
    a = np.asarray(a, float)[..., None]
    if model == "empiric":
        lp = np.exp(a) * np.log(skeleton)
        return lp, np.log(-np.expm1(lp))
    x = np.log(skeleton / (1 - skeleton)) - intercept
    eta = intercept + np.exp(a) * x
    return -np.logaddexp(0.0, -eta), -np.logaddexp(0.0, eta)


def crm_posterior(n, y, skeleton, model: str = "empiric", prior_var: float = 1.34,
                  intercept: float = 3.0, target: float | None = None) -> dict:
    """Posterior of the CRM parameter by quadrature.

    Parameters
    ----------
    n, y : array (..., n_doses)
        Participants and DLTs per dose (leading axes = trials).
    skeleton : sequence of float
    model : {"empiric", "logistic"}
    prior_var : float, default 1.34
    intercept : float, default 3
    target : float, optional
        With it, ``p_over_target_lowest`` = P(p_1 > target | data).

    Returns
    -------
    dict
        ``a_mean`` (posterior mean of a), ``p_hat`` (model at ``a_mean``, dfcrm's estimate),
        ``p_mean`` (posterior mean of each p), ``marginal`` (normalising constant).
    """
    sk = check_probabilities(skeleton, "skeleton")
    n = np.asarray(n, float)
    y = np.asarray(y, float)
    lp, l1 = _logp(_A, sk, model, intercept)  # (G, D)
    P = np.exp(lp)
    ll = y @ lp.T + (n - y) @ l1.T  # (..., G)
    lprior = -0.5 * _A ** 2 / prior_var - 0.5 * np.log(2 * np.pi * prior_var)
    lj = ll + lprior
    m = lj.max(axis=-1, keepdims=True)
    w = np.exp(lj - m) * _W
    z = w.sum(axis=-1)
    a_mean = (w @ _A) / z
    p_mean = (w @ P) / z[..., None]
    over = None if target is None else (w @ (P[:, 0] > target)) / z
    return {"a_mean": a_mean, "p_hat": _prob(a_mean, sk, model, intercept), "p_mean": p_mean,
            "marginal": z * np.exp(m[..., 0]), "p_over_target_lowest": over}


class CRM(Design):
    """Bayesian one-parameter CRM.

    Parameters
    ----------
    n_doses : int
    target : float, default 0.3
    skeleton : sequence of float, optional
        Prior DLT guesses; default ``crm_skeleton(0.05, target, ceil(n_doses / 2), n_doses)``.
    model : {"empiric", "logistic"}, default "empiric"
    prior_var : float, default 1.34
    intercept : float, default 3 (logistic)
    cohort_size, n_cohorts : int
    start : int, default 0
        Starting dose (0-based).
    no_skip : bool, default True
        Escalate at most one level above the current dose.
    coherent : bool, default True
        No escalation right after a cohort with a DLT.
    stop_cutoff : float, optional
        Stop with no MTD when ``P(p_1 > target | data) > stop_cutoff`` (off by default).
    """

    name = "crm"

    def __init__(self, n_doses: int, target: float = 0.3, skeleton=None,
                 model: str = "empiric", prior_var: float = 1.34, intercept: float = 3.0,
                 cohort_size: int = 3, n_cohorts: int = 10, start: int = 0,
                 no_skip: bool = True, coherent: bool = True,
                 stop_cutoff: float | None = None) -> None:
        super().__init__(n_doses, target, cohort_size, n_cohorts)
        self.model = check_option("model", model, CRM_MODELS, ModelSpecError)
        if skeleton is None:
            skeleton = crm_skeleton(min(0.05, 0.5 * min(self.target, 1 - self.target)),
                                    self.target, (n_doses + 1) // 2, n_doses, self.model,
                                    intercept)
        sk = check_probabilities(skeleton, "skeleton")
        if sk.size != n_doses or np.any(np.diff(sk) <= 0) or sk[0] <= 0 or sk[-1] >= 1:
            raise ModelSpecError(f"skeleton={sk.tolist()}: expected {n_doses} strictly "
                                 "increasing values in (0, 1).")
        if prior_var <= 0:
            raise ModelSpecError(f"prior_var={prior_var!r}: expected > 0.")
        self.skeleton = sk
        self.prior_var = float(prior_var)
        self.intercept = float(intercept)
        self.start = int(start)
        self.no_skip = bool(no_skip)
        self.coherent = bool(coherent)
        self.stop_cutoff = stop_cutoff

    def posterior(self, n, y) -> dict:
        """:func:`crm_posterior` with this design's model; adds P(p_1 > target)."""
        return crm_posterior(n, y, self.skeleton, self.model, self.prior_var, self.intercept,
                             self.target)

    def posterior_interval(self, n, y, level: float = 0.9) -> np.ndarray:
        """Equal-tailed posterior interval of each dose's DLT probability, shape (2, D).

        Quantiles of ``p_d`` under the same quadrature posterior of ``a`` as
        :meth:`posterior` (one trial state: ``n``, ``y`` of shape (D,)).
        """
        from carkinetics.escalation.base import weighted_quantiles

        lp, l1 = _logp(_A, self.skeleton, self.model, self.intercept)
        lj = (np.asarray(y, float) @ lp.T + (np.asarray(n, float) - np.asarray(y, float))
              @ l1.T - 0.5 * _A ** 2 / self.prior_var)
        w = np.exp(lj - lj.max()) * _W
        a = (1.0 - level) / 2.0
        return weighted_quantiles(np.exp(lp), w, [a, 1.0 - a])

    def _next(self, p_hat: np.ndarray, d: np.ndarray, last_dlt: np.ndarray) -> np.ndarray:
        rec = np.argmin(np.abs(p_hat - self.target), axis=-1)
        if self.no_skip:
            rec = np.minimum(rec, d + 1)
        if self.coherent:
            rec = np.where(last_dlt, np.minimum(rec, d), rec)
        return rec

    def decide(self, state: TrialState) -> Decision:
        """CRM recommendation for the next cohort (evaluable counts by delivered dose)."""
        self.check_state(state)
        n, y, d = state.n, state.y, state.current
        post = self.posterior(n, y)
        last = state.last_cohort_dlt(self.cohort_size)
        rec = int(self._next(post["p_hat"], np.array(d), np.array(last)))
        unr = int(np.argmin(np.abs(post["p_hat"] - self.target)))
        nums = {"n_per_dose": n.tolist(), "dlt_per_dose": y.tolist(),
                "skeleton": self.skeleton.tolist(), "model": self.model,
                "posterior_mean_a": float(post["a_mean"]), "p_hat": post["p_hat"].tolist(),
                "posterior_mean_p": post["p_mean"].tolist(),
                "p_lowest_over_target": float(post["p_over_target_lowest"]),
                "unrestricted_recommendation_level": unr + 1}
        if self.stop_cutoff is not None and post["p_over_target_lowest"] > self.stop_cutoff:
            return Decision("stop", None, d, f"P(p1 > {self.target}) = "
                            f"{post['p_over_target_lowest']:.3f} > {self.stop_cutoff}: stop, "
                            "no MTD", nums)
        if int(n.sum()) >= self.n_cohorts * self.cohort_size:
            return Decision("stop", None, d, f"maximum sample size reached: MTD = dose "
                            f"{unr + 1} (estimate closest to the target)", nums, unr)
        why = f"estimate closest to target {self.target} at dose {unr + 1}"
        if rec != unr:
            skip_cap = min(unr, d + 1) if self.no_skip else unr
            reason = ("coherence: DLT in the last cohort, no escalation" if rec < skip_cap
                      else "no skipping of untried doses")
            why += f"; restricted to dose {rec + 1} ({reason})"
        action = "escalate" if rec > d else "deescalate" if rec < d else "stay"
        return Decision(action, rec, d, why, nums)

    def select_mtd(self, state: TrialState) -> int | None:
        """Dose whose posterior estimate is closest to the target."""
        self.check_state(state)
        post = self.posterior(state.n, state.y)
        if self.stop_cutoff is not None and post["p_over_target_lowest"] > self.stop_cutoff:
            return None
        return int(np.argmin(np.abs(post["p_hat"] - self.target)))

    def simulate_pool(self, pool: ParticipantPool) -> dict:
        """Run every trial of ``pool`` at once (numpy over trials, loop over cohorts)."""
        if pool.n_doses != self.n_doses or pool.n_slots < self.n_slots:
            raise ModelSpecError(f"pool shape {pool.dlt.shape}: expected {self.n_doses} doses "
                                 f"and >= {self.n_slots} slots.")
        T, D, k = pool.n_trials, self.n_doses, self.cohort_size
        cum = np.zeros((T, D, pool.n_slots + 1), np.int32)
        np.cumsum(pool.dlt, axis=2, out=cum[:, :, 1:])
        n = np.zeros((T, D), int)
        y = np.zeros((T, D), int)
        d = np.full(T, self.start)
        active = np.ones(T, bool)
        coh = np.zeros(T, int)
        reason = np.full(T, "max_sample_size", dtype=object)
        sel = np.full(T, -1)
        rows = np.arange(T)
        for _ in range(self.n_cohorts):
            a = rows[active]
            if a.size == 0:
                break
            da = d[a]
            before = cum[a, da, n[a, da]]
            n[a, da] += k
            after = cum[a, da, n[a, da]]
            y[a, da] = after
            coh[a] += 1
            post = self.posterior(n[a], y[a])
            if self.stop_cutoff is not None:
                st = post["p_over_target_lowest"] > self.stop_cutoff
                reason[a[st]] = "lowest_dose_too_toxic"
                active[a[st]] = False
            d[a] = self._next(post["p_hat"], da, after > before)
        fin = reason == "max_sample_size"
        if fin.any():
            post = self.posterior(n[fin], y[fin])
            sel[fin] = np.argmin(np.abs(post["p_hat"] - self.target), axis=-1)
        return {"selected": sel, "n": n, "y": y, "cohorts": coh, "reason": reason}

    def simulate_loop(self, pool: ParticipantPool) -> dict:
        """Per-trial reference loop through :meth:`decide`."""
        T, D, k = pool.n_trials, self.n_doses, self.cohort_size
        out = {"selected": np.full(T, -1), "n": np.zeros((T, D), int),
               "y": np.zeros((T, D), int), "cohorts": np.zeros(T, int),
               "reason": np.empty(T, object)}
        for t in range(T):
            lvl: list[int] = []
            dlt: list[bool] = []
            d = self.start
            cnt = np.zeros(D, int)
            why = "max_sample_size"
            mtd = None
            while True:
                lvl += [d] * k
                dlt += pool.dlt[t, d, cnt[d]:cnt[d] + k].tolist()
                cnt[d] += k
                out["cohorts"][t] += 1
                dec = self.decide(TrialState(D, lvl, dlt, current=d))
                if dec.action == "stop":
                    mtd = dec.mtd
                    if mtd is None:
                        why = "lowest_dose_too_toxic"
                    break
                d = dec.next_dose
            out["selected"][t] = -1 if mtd is None else mtd
            out["n"][t] = cnt
            out["y"][t] = np.bincount(lvl, weights=np.asarray(dlt, float), minlength=D)
            out["reason"][t] = why
        return out

    def exact_paths(self, true_tox) -> list:
        """Every dose path: ``(probability, n, y, cohorts, reason, selected)``.

        The number of distinct states grows quickly; use for a few cohorts.
        """
        from scipy import stats
        p = check_probabilities(true_tox)
        if p.size != self.n_doses:
            raise ModelSpecError(f"true_tox has {p.size} values; the design has "
                                 f"{self.n_doses} doses.")
        k, D = self.cohort_size, self.n_doses
        pk = [stats.binom.pmf(np.arange(k + 1), k, pi) for pi in p]
        live = {(self.start, (0,) * D, (0,) * D): 1.0}
        ends: list = []
        for c in range(1, self.n_cohorts + 1):
            nxt: dict = {}
            for (d, n, y), pr in live.items():
                for x in range(k + 1):
                    q = pr * pk[d][x]
                    if q == 0.0:
                        continue
                    n2, y2 = np.array(n), np.array(y)
                    n2[d] += k
                    y2[d] += x
                    post = self.posterior(n2, y2)
                    if (self.stop_cutoff is not None
                            and post["p_over_target_lowest"] > self.stop_cutoff):
                        ends.append((q, n2, y2, c, "lowest_dose_too_toxic", -1))
                        continue
                    if c == self.n_cohorts:
                        sel = int(np.argmin(np.abs(post["p_hat"] - self.target)))
                        ends.append((q, n2, y2, c, "max_sample_size", sel))
                        continue
                    d2 = int(self._next(post["p_hat"], np.array(d), np.array(x > 0)))
                    key = (d2, tuple(n2.tolist()), tuple(y2.tolist()))
                    nxt[key] = nxt.get(key, 0.0) + q
            live = nxt
        return ends

    def exact_oc(self, true_tox):
        """Exact operating characteristics by enumerating dose paths (few cohorts)."""
        from carkinetics.escalation.oc import summarize_paths
        return summarize_paths(self, self.exact_paths(true_tox), true_tox)
