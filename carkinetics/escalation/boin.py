"""Bayesian optimal interval (BOIN) design (Liu & Yuan 2015), options as in the R BOIN package.

Boundaries (``get.boundary``): with ``phi1 = 0.6 phi`` and ``phi2 = 1.4 phi``,

    lambda_e = ln((1-phi1)/(1-phi)) / ln(phi (1-phi1) / (phi1 (1-phi)))
    lambda_d = ln((1-phi)/(1-phi2)) / ln(phi2 (1-phi) / (phi (1-phi2)))

escalate when ``y <= floor(lambda_e n)``, de-escalate when ``y >= ceil(lambda_d n)`` and
eliminate the dose (and all higher) when ``n >= 3`` and ``P(p > phi | y, n) > cutoff`` under a
Beta(1, 1) prior.

Trial flow after each cohort at dose d (the package's order): add the cohort; stop if
``n_d >= n_earlystop``; elimination (stop with no MTD if d is the lowest); extrasafe (lowest
dose, ``cutoff - offset``); then escalate if ``y_d <= b_e(n_d)``, d is not the highest and d+1
is not eliminated, else de-escalate if ``y_d >= b_d(n_d)`` and d is not the lowest, else stay.
MTD selection: isotonic (weighted pool-adjacent-violators) estimates over the treated doses
below the first eliminated one, the dose closest to the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from carkinetics.escalation.base import (
    Decision,
    Design,
    ParticipantPool,
    TrialState,
    check_target,
)
from carkinetics.exceptions import ModelSpecError

__all__ = ["BoinBoundaries", "boin_boundaries", "BOIN", "pava", "boin_select_mtd",
           "STOP_REASONS"]

#: Codes of the reason each simulated trial stopped.
STOP_REASONS = ("max_sample_size", "n_earlystop", "lowest_dose_eliminated", "extrasafe")


def _lambdas(target: float, p_saf: float | None, p_tox: float | None) -> tuple[float, float]:
    phi = target
    phi1 = 0.6 * phi if p_saf is None else float(p_saf)
    phi2 = 1.4 * phi if p_tox is None else float(p_tox)
    if not (0 < phi1 < phi < phi2 < 1):
        raise ModelSpecError(f"p_saf={phi1!r}, p_tox={phi2!r}: expected 0 < p_saf < target "
                             f"({phi}) < p_tox < 1.")
    lam_e = np.log((1 - phi1) / (1 - phi)) / np.log(phi * (1 - phi1) / (phi1 * (1 - phi)))
    lam_d = np.log((1 - phi) / (1 - phi2)) / np.log(phi2 * (1 - phi) / (phi * (1 - phi2)))
    return float(lam_e), float(lam_d)


@dataclass(frozen=True)
class BoinBoundaries:
    """BOIN boundaries for n = 1..max_n participants at a dose.

    Attributes
    ----------
    target, lambda_e, lambda_d, cutoff : float
    n : int array
    escalate_if_le : int array
        Largest DLT count that escalates (floor(lambda_e n)).
    deescalate_if_ge : int array
        Smallest DLT count that de-escalates (ceil(lambda_d n)); -1 where none <= n qualifies.
    eliminate_if_ge : int array
        Smallest DLT count that eliminates; -1 where none qualifies (always for n < 3).
    """

    target: float
    lambda_e: float
    lambda_d: float
    cutoff: float
    n: np.ndarray
    escalate_if_le: np.ndarray
    deescalate_if_ge: np.ndarray
    eliminate_if_ge: np.ndarray

    def to_frame(self, cohort_size: int | None = None):
        """Table with columns n, escalate_if_le, deescalate_if_ge, eliminate_if_ge.

        Missing counts (no count qualifies) are pandas ``<NA>``. With ``cohort_size`` only
        multiples of it are kept.
        """
        import pandas as pd
        df = pd.DataFrame({"n": self.n, "escalate_if_le": self.escalate_if_le,
                           "deescalate_if_ge": self.deescalate_if_ge,
                           "eliminate_if_ge": self.eliminate_if_ge})
        for c in ("escalate_if_le", "deescalate_if_ge", "eliminate_if_ge"):
            df[c] = df[c].astype("Int64").mask(df[c] < 0)
        if cohort_size:
            df = df[df["n"] % cohort_size == 0].reset_index(drop=True)
        return df


def boin_boundaries(target: float, max_n: int = 30, cutoff: float = 0.95,
                    p_saf: float | None = None, p_tox: float | None = None,
                    min_n_elim: int = 3) -> BoinBoundaries:
    """BOIN escalation, de-escalation and elimination boundaries.

    Parameters
    ----------
    target : float
        Target DLT probability, in (0, 1).
    max_n : int, default 30
        Largest number of participants at a dose.
    cutoff : float, default 0.95
        Elimination when ``P(p > target | data) > cutoff`` (Beta(1, 1) prior).
    p_saf, p_tox : float, optional
        Highest sub-therapeutic and lowest overly toxic probabilities (default 0.6 and 1.4
        times the target).
    min_n_elim : int, default 3
        Elimination applies from this many participants.

    Returns
    -------
    BoinBoundaries

    Examples
    --------
    >>> b = boin_boundaries(0.3, max_n=6)
    >>> round(b.lambda_e, 4), round(b.lambda_d, 4)
    (0.2365, 0.3585)
    >>> b.escalate_if_le.tolist(), b.deescalate_if_ge.tolist()
    ([0, 0, 0, 0, 1, 1], [1, 1, 2, 2, 2, 3])
    """
    target = check_target(target)
    if int(max_n) < 1:
        raise ModelSpecError(f"max_n={max_n!r}: expected a positive integer.")
    if not 0 < cutoff < 1:
        raise ModelSpecError(f"cutoff={cutoff!r}: expected a probability in (0, 1).")
    lam_e, lam_d = _lambdas(target, p_saf, p_tox)
    n = np.arange(1, int(max_n) + 1)
    # floor/ceil of lambda*n with a tolerance so that an exact integer product is kept.
    esc = np.floor(lam_e * n + 1e-12).astype(int)
    dee = np.ceil(lam_d * n - 1e-12).astype(int)
    dee = np.where(dee > n, -1, dee)
    elim = np.full(n.size, -1)
    for i, m in enumerate(n):
        if m < min_n_elim:
            continue
        yy = np.arange(m + 1)
        ok = stats.beta.sf(target, yy + 1, m - yy + 1) > cutoff
        if ok.any():
            elim[i] = int(yy[ok][0])
    return BoinBoundaries(target, lam_e, lam_d, float(cutoff), n, esc, dee, elim)


def pava(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted pool-adjacent-violators: the non-decreasing fit minimising sum w (x - f)^2.

    Examples
    --------
    >>> pava(np.array([0.1, 0.4, 0.2, 0.5]), np.ones(4)).tolist()
    [0.1, 0.30000000000000004, 0.30000000000000004, 0.5]
    """
    vals: list[float] = []
    wts: list[float] = []
    sizes: list[int] = []
    for xi, wi in zip(np.asarray(x, float), np.asarray(w, float), strict=True):
        vals.append(xi)
        wts.append(wi)
        sizes.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            wsum = wts[-2] + wts[-1]
            v = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / wsum
            s = sizes[-2] + sizes[-1]
            del vals[-1], wts[-1], sizes[-1]
            vals[-1], wts[-1], sizes[-1] = v, wsum, s
    return np.repeat(vals, sizes)


def _elim_first(n: np.ndarray, y: np.ndarray, target: float, cutoff: float) -> int:
    """Index of the first dose meeting the elimination rule (n >= 3), or len(n)."""
    for i in range(n.size):
        if n[i] >= 3 and stats.beta.sf(target, y[i] + 1, n[i] - y[i] + 1) > cutoff:
            return i
    return n.size


def boin_select_mtd(n, y, target: float, cutoff: float = 0.95, extrasafe: bool = False,
                    offset: float = 0.05, bound_mtd: bool = False,
                    lambda_d: float | None = None) -> tuple[int | None, np.ndarray]:
    """BOIN MTD selection (the package's ``select.mtd``).

    Parameters
    ----------
    n, y : sequence of int
        Participants and DLTs per dose.
    target : float
        Target DLT probability.
    cutoff : float, default 0.95
        Elimination cutoff.
    extrasafe : bool, default False
        Also eliminate every dose when ``P(p_1 > target) > cutoff - offset`` at the lowest dose.
    offset : float, default 0.05
    bound_mtd : bool, default False
        Only doses whose isotonic estimate is below the de-escalation boundary ``lambda_d``
        may be selected (the lowest treated dose when none is).
    lambda_d : float, optional
        De-escalation boundary for ``bound_mtd`` (default: from the target).

    Returns
    -------
    mtd : int or None
        0-based dose level, None when no dose is selected.
    estimates : array
        Isotonic DLT probability estimates per dose (nan where not estimated).
    """
    n = np.asarray(n, dtype=float)
    y = np.asarray(y, dtype=float)
    est = np.full(n.size, np.nan)
    first = _elim_first(n, y, target, cutoff)
    if extrasafe and n[0] >= 3 and stats.beta.sf(target, y[0] + 1, n[0] - y[0] + 1) > \
            cutoff - offset:
        first = 0
    adm = np.flatnonzero((n > 0) & (np.arange(n.size) < first))
    if first == 0 or adm.size == 0:
        return None, est
    ya, na = y[adm], n[adm]
    phat = (ya + 0.05) / (na + 0.1)
    var = (ya + 0.05) * (na - ya + 0.05) / ((na + 0.1) ** 2 * (na + 1.1))
    fit = pava(phat, 1.0 / var)
    est[adm] = fit
    fit = fit + np.arange(1, fit.size + 1) * 1e-10
    cand = np.arange(fit.size)
    if bound_mtd:
        lam_d = _lambdas(target, None, None)[1] if lambda_d is None else lambda_d
        below = cand[fit < lam_d]
        cand = below if below.size else cand[:1]
    sel = cand[np.argmin(np.abs(fit[cand] - target))]
    return int(adm[sel]), est


class BOIN(Design):
    """BOIN design with the R BOIN package's options.

    Parameters
    ----------
    n_doses : int
    target : float, default 0.3
    cohort_size : int, default 3
    n_cohorts : int, default 10
    n_earlystop : int, default 100
        Stop once this many participants are at the current dose (100 turns it off for the
        usual sizes, as in the package; 18 is common).
    cutoff : float, default 0.95
        Elimination cutoff.
    extrasafe : bool, default False
        Stop the trial when the lowest dose is too toxic with ``cutoff - offset``.
    offset : float, default 0.05
    titration : bool, default False
        Accelerated titration: one participant per dose until the first DLT.
    bound_mtd : bool, default False
        Selected MTD must have an isotonic estimate below lambda_d.
    start : int, default 0
        Starting dose level (0-based).
    p_saf, p_tox : float, optional
        Interval limits (default 0.6 and 1.4 times the target).
    """

    name = "boin"

    def __init__(self, n_doses: int, target: float = 0.3, cohort_size: int = 3,
                 n_cohorts: int = 10, n_earlystop: int = 100, cutoff: float = 0.95,
                 extrasafe: bool = False, offset: float = 0.05, titration: bool = False,
                 bound_mtd: bool = False, start: int = 0, p_saf: float | None = None,
                 p_tox: float | None = None) -> None:
        super().__init__(n_doses, target, cohort_size, n_cohorts)
        self.n_earlystop = int(n_earlystop)
        self.cutoff = float(cutoff)
        self.extrasafe = bool(extrasafe)
        self.offset = float(offset)
        self.titration = bool(titration)
        self.bound_mtd = bool(bound_mtd)
        if not 0 <= int(start) < n_doses:
            raise ModelSpecError(f"start={start!r}: expected a dose level in 0..{n_doses - 1}.")
        self.start = int(start)
        max_n = self.n_slots + 1
        self.bounds = boin_boundaries(self.target, max_n, self.cutoff, p_saf, p_tox)
        # Extrasafe threshold table: P(p > target | y, n) > cutoff - offset.
        nn = np.arange(max_n + 1)[:, None]
        yy = np.arange(max_n + 1)[None, :]
        with np.errstate(invalid="ignore"):
            post = stats.beta.sf(self.target, yy + 1, np.maximum(nn - yy + 1, 1e-9))
        self._safe_tab = (post > self.cutoff - self.offset) & (yy <= nn) & (nn >= 3)
        self._post_tab = post

    @property
    def n_slots(self) -> int:
        """Slots per dose a simulated trial can need (one more with titration)."""
        return self.n_cohorts * self.cohort_size + (1 if self.titration else 0)

    # -- scalar rules (decide, per-trial loop, exact enumeration) -------------------------
    def _b(self, n: int) -> tuple[int, int, int]:
        i = n - 1
        big = 10 ** 9
        b = self.bounds
        if n < 1:
            return -1, big, big
        if i >= b.n.size:
            b = boin_boundaries(self.target, n, self.cutoff)
            i = n - 1
        de = int(b.deescalate_if_ge[i])
        el = int(b.eliminate_if_ge[i])
        return int(b.escalate_if_le[i]), (big if de < 0 else de), (big if el < 0 else el)

    def step(self, d: int, n: np.ndarray, y: np.ndarray, elim: np.ndarray):
        """Apply the trial flow at dose ``d`` after a cohort (counts already added).

        Returns ``(next_dose, elim, reason, rule, numbers)``; ``reason`` is None while the trial
        continues, else a code of :data:`STOP_REASONS`.
        """
        nd, yd = int(n[d]), int(y[d])
        be, bd, bel = self._b(nd)
        nums = {"dose_level": d + 1, "n": nd, "dlt": yd, "escalate_if_le": be,
                "deescalate_if_ge": None if bd > nd else bd,
                "eliminate_if_ge": None if bel > nd else bel,
                "lambda_e": self.bounds.lambda_e, "lambda_d": self.bounds.lambda_d}
        if nd >= self.n_earlystop:
            return d, elim, "n_earlystop", (f"{nd} participants at dose {d + 1} >= n_earlystop "
                                            f"{self.n_earlystop}: stop and select the MTD"), nums
        elim = elim.copy()
        if nd >= 3 and yd >= bel:
            elim[d:] = True
            if d == 0:
                return d, elim, "lowest_dose_eliminated", (
                    f"{yd}/{nd} DLTs >= elimination boundary {bel} at the lowest dose: "
                    f"P(p > {self.target}) > {self.cutoff}; stop, no MTD"), nums
        if self.extrasafe and d == 0 and nd >= 3 and self._safe_tab[nd, yd]:
            return d, elim, "extrasafe", (
                f"extrasafe: P(p1 > {self.target}) > {self.cutoff} - {self.offset} at the "
                "lowest dose; stop, no MTD"), nums
        D = self.n_doses
        if yd <= be and d != D - 1:
            if not elim[d + 1]:
                return d + 1, elim, None, f"{yd}/{nd} DLTs <= {be}: escalate", nums
            return d, elim, None, (f"{yd}/{nd} DLTs <= {be} but dose {d + 2} is eliminated: "
                                   "stay"), nums
        if yd >= bd and d != 0:
            extra = " (dose and higher eliminated)" if elim[d] else ""
            return d - 1, elim, None, f"{yd}/{nd} DLTs >= {bd}: de-escalate{extra}", nums
        if yd <= be:
            why = "highest dose"
        elif yd >= bd:
            why = "lowest dose"
        else:
            why = "between the boundaries"
        return d, elim, None, f"{yd}/{nd} DLTs, {why}: stay", nums

    def elimination(self, n: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Doses eliminated by the counts (the first dose meeting the rule and all higher)."""
        first = _elim_first(np.asarray(n), np.asarray(y), self.target, self.cutoff)
        return np.arange(self.n_doses) >= first

    def decide(self, state: TrialState) -> Decision:
        """BOIN decision at the current dose of ``state`` (evaluable counts by delivered dose).

        Elimination is recomputed from all counts; participants still inside the DLT window
        are not counted (BOIN proper waits for them; TITE-BOIN is not implemented).
        """
        self.check_state(state)
        n, y = state.n, state.y
        d = state.current
        if n[d] == 0:
            return Decision("stay", d, d, f"no evaluable participant at dose {d + 1} yet: "
                            "treat the next cohort there", {"n": n.tolist(), "y": y.tolist()})
        elim = self.elimination(n, y)
        nxt, elim, reason, rule, nums = self.step(d, n, y, elim)
        nums.update({"n_per_dose": n.tolist(), "dlt_per_dose": y.tolist(),
                     "eliminated_levels": (np.flatnonzero(elim) + 1).tolist(),
                     "pending_per_dose": state.n_pending.tolist()})
        if reason is not None:
            mtd = self.select_mtd(state) if reason == "n_earlystop" else None
            return Decision("stop", None, d, rule, nums, mtd)
        if int(n.sum()) >= self.n_cohorts * self.cohort_size:
            mtd = self.select_mtd(state)
            return Decision("stop", None, d, rule + "; maximum sample size reached: select the "
                            "MTD", nums, mtd)
        if elim[nxt]:
            # A dose can be eliminated by participants at a LOWER dose than the current one
            # (e.g. backfill): never recommend an eliminated dose.
            ok = np.flatnonzero(~elim)
            if ok.size == 0:
                return Decision("stop", None, d, rule + "; every dose eliminated: stop, no MTD",
                                nums)
            nxt = int(ok[-1])
            rule += f"; dose {d + 1} is eliminated: go to dose {nxt + 1}"
        action = "escalate" if nxt > d else "deescalate" if nxt < d else "stay"
        pend = int(state.n_pending[d:].sum())
        if action == "escalate" and pend:
            return Decision("stay", d, d, rule + f", but {pend} participant(s) at this dose or "
                            "above are still inside the DLT window: do not escalate until they "
                            "are evaluable", nums)
        return Decision(action, nxt, d, rule, nums)

    def select_mtd(self, state: TrialState) -> int | None:
        """Isotonic MTD selection (``select.mtd``) from the evaluable counts."""
        self.check_state(state)
        return boin_select_mtd(state.n, state.y, self.target, self.cutoff, self.extrasafe,
                               self.offset, self.bound_mtd, self.bounds.lambda_d)[0]

    def _select(self, n, y) -> int:
        m = boin_select_mtd(n, y, self.target, self.cutoff, self.extrasafe, self.offset,
                            self.bound_mtd, self.bounds.lambda_d)[0]
        return -1 if m is None else m

    # -- per-trial reference loop ---------------------------------------------------------
    def simulate_loop(self, pool: ParticipantPool) -> dict:
        """Run every trial of ``pool`` with a plain per-trial Python loop (reference)."""
        T, D = pool.n_trials, self.n_doses
        self._check_pool(pool)
        sel = np.empty(T, int)
        N = np.zeros((T, D), int)
        Y = np.zeros((T, D), int)
        coh = np.zeros(T, int)
        reason = np.empty(T, object)
        for t in range(T):
            dl = pool.dlt[t]
            n = np.zeros(D, int)
            y = np.zeros(D, int)
            elim = np.zeros(D, bool)
            d = self.start
            if self.titration:
                z = dl[:, 0]
                if not z.any():
                    d = D - 1
                    n[:] = 1
                else:
                    d = int(np.argmax(z))
                    n[:d + 1] = 1
                    y[d] = 1
            why = "max_sample_size"
            for _ in range(self.n_cohorts):
                k = self.cohort_size
                y[d] += int(dl[d, n[d]:n[d] + k].sum())
                n[d] += k
                coh[t] += 1
                d, elim, r, _, _ = self.step(d, n, y, elim)
                if r is not None:
                    why = r
                    break
            reason[t] = why
            sel[t] = -1 if why in ("lowest_dose_eliminated", "extrasafe") else self._select(n, y)
            N[t], Y[t] = n, y
        return {"selected": sel, "n": N, "y": Y, "cohorts": coh, "reason": reason}

    def _check_pool(self, pool: ParticipantPool) -> None:
        if pool.n_doses != self.n_doses:
            raise ModelSpecError(f"pool has {pool.n_doses} doses; the design has "
                                 f"{self.n_doses}.")
        if pool.n_slots < self.n_slots:
            raise ModelSpecError(f"pool has {pool.n_slots} participant slots per dose; the "
                                 f"design can need {self.n_slots}.")

    # -- vectorised simulator -------------------------------------------------------------
    def simulate_pool(self, pool: ParticipantPool) -> dict:
        """Run every trial of ``pool`` at once (numpy over trials, a loop over cohorts only).

        Returns per-trial ``selected`` (0-based, -1 = no MTD), ``n`` and ``y`` per dose,
        ``cohorts`` treated and ``reason`` (codes of :data:`STOP_REASONS`).
        """
        self._check_pool(pool)
        T, D, k = pool.n_trials, self.n_doses, self.cohort_size
        S = pool.n_slots
        cum = np.zeros((T, D, S + 1), np.int32)
        np.cumsum(pool.dlt, axis=2, out=cum[:, :, 1:])
        big = 10 ** 6
        nmax = S + 1
        b = self.bounds  # computed for n = 1..n_slots + 1 at construction
        be = np.r_[-1, b.escalate_if_le]
        bd = np.r_[big, np.where(b.deescalate_if_ge < 0, big, b.deescalate_if_ge)]
        bel = np.r_[big, np.where(b.eliminate_if_ge < 0, big, b.eliminate_if_ge)]
        rows = np.arange(T)
        n = np.zeros((T, D), np.int32)
        y = np.zeros((T, D), np.int32)
        first_elim = np.full(T, D, np.int32)  # eliminated doses are >= first_elim
        d = np.full(T, self.start, np.int32)
        if self.titration:
            z = pool.dlt[:, :, 0]
            anyz = z.any(axis=1)
            fz = np.where(anyz, np.argmax(z, axis=1), D - 1)
            n[:] = (np.arange(D)[None, :] <= fz[:, None])
            y[rows, fz] = anyz
            d = fz.astype(np.int32)
        active = np.ones(T, bool)
        reason = np.zeros(T, np.int8)
        coh = np.zeros(T, np.int32)
        for _ in range(self.n_cohorts):
            a = np.flatnonzero(active)
            if a.size == 0:
                break
            da = d[a]
            nd = n[a, da] + k
            n[a, da] = nd
            yd = cum[a, da, nd]
            y[a, da] = yd
            coh[a] += 1
            es = nd >= self.n_earlystop
            el = (yd >= bel[nd]) & ~es
            first_elim[a] = np.where(el, np.minimum(first_elim[a], da), first_elim[a])
            low = el & (da == 0)
            stop_safe = np.zeros(a.size, bool)
            if self.extrasafe:
                stop_safe = (~es) & (~low) & (da == 0) & self._safe_tab[np.minimum(nd, nmax),
                                                                        yd]
            reason[a[es]] = 1
            reason[a[low]] = 2
            reason[a[stop_safe]] = 3
            go = ~(es | low | stop_safe)
            up = go & (yd <= be[nd]) & (da != D - 1)
            up_ok = up & (da + 1 < first_elim[a])
            down = go & ~up & (yd >= bd[nd]) & (da != 0)
            d[a] = da + up_ok - down
            active[a[~go]] = False
        sel = self._select_vec(n, y, reason)
        names = np.array(STOP_REASONS, dtype=object)
        return {"selected": sel, "n": n.astype(int), "y": y.astype(int), "cohorts": coh,
                "reason": names[reason]}

    def _select_vec(self, n: np.ndarray, y: np.ndarray, reason: np.ndarray) -> np.ndarray:
        """Vectorised ``select.mtd`` over trials (isotonic fit by the min-max formula)."""
        T, D = n.shape
        nf = n.astype(float)
        yf = y.astype(float)
        post = np.where(n >= 3, self._post_tab[np.minimum(n, self._post_tab.shape[0] - 1),
                                               np.minimum(y, self._post_tab.shape[1] - 1)], 0.0)
        elim = np.logical_or.accumulate(post > self.cutoff, axis=1)
        if self.extrasafe:
            es = (n[:, 0] >= 3) & (post[:, 0] > self.cutoff - self.offset)
            elim |= es[:, None]
        adm = (n > 0) & ~elim
        phat = (yf + 0.05) / (nf + 0.1)
        var = (yf + 0.05) * (nf - yf + 0.05) / ((nf + 0.1) ** 2 * (nf + 1.1))
        w = np.where(adm, 1.0 / var, 0.0)
        wx = w * phat
        cw = np.concatenate([np.zeros((T, 1)), np.cumsum(w, axis=1)], axis=1)
        cx = np.concatenate([np.zeros((T, 1)), np.cumsum(wx, axis=1)], axis=1)
        # A[t, j, k] = weighted mean of j..k; isotonic fit f_i = max_{j<=i} min_{k>=i} A[j, k].
        sw = cw[:, None, 1:] - cw[:, :-1, None]
        sx = cx[:, None, 1:] - cx[:, :-1, None]
        jj, kk = np.meshgrid(np.arange(D), np.arange(D), indexing="ij")
        valid = (kk >= jj)[None] & (sw > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            A = np.where(valid, sx / np.where(sw > 0, sw, 1.0), np.nan)
        fit = np.empty((T, D))
        for i in range(D):
            mn = np.nanmin(np.where(np.isnan(A[:, : i + 1, i:]), np.inf, A[:, : i + 1, i:]),
                           axis=2)
            fit[:, i] = np.max(np.where(np.isinf(mn), -np.inf, mn), axis=1)
        rank = np.cumsum(adm, axis=1)
        fit = fit + rank * 1e-10
        score = np.abs(fit - self.target)
        if self.bound_mtd:
            okb = (fit - rank * 1e-10) < self.bounds.lambda_d
            firstadm = adm & (np.cumsum(adm, axis=1) == 1)
            okb = okb | (firstadm & ~(okb & adm).any(axis=1, keepdims=True))
            score = np.where(okb, score, np.inf)
        score = np.where(adm, score, np.inf)
        sel = np.argmin(score, axis=1)
        none = ~adm.any(axis=1) | elim[:, 0] | (reason >= 2)
        return np.where(none, -1, sel)

    # -- exact operating characteristics ----------------------------------------------------
    def exact_paths(self, true_tox) -> list[tuple[float, np.ndarray, np.ndarray, int, str]]:
        """Enumerate every dose path: ``(probability, n, y, cohorts, reason)`` per end state."""
        from carkinetics.escalation.base import check_probabilities
        p = check_probabilities(true_tox)
        if p.size != self.n_doses:
            raise ModelSpecError(f"true_tox has {p.size} values; the design has "
                                 f"{self.n_doses} doses.")
        if self.titration:
            raise ModelSpecError("exact operating characteristics are not available with "
                                 "titration=True; simulate instead.")
        k = self.cohort_size
        pk = [stats.binom.pmf(np.arange(k + 1), k, pi) for pi in p]
        D = self.n_doses
        live = {(self.start, (0,) * D, (0,) * D, (False,) * D): 1.0}
        ends: list = []
        for c in range(1, self.n_cohorts + 1):
            nxt: dict = {}
            for (d, n, y, el), pr in live.items():
                for x in range(k + 1):
                    q = pr * pk[d][x]
                    if q == 0.0:
                        continue
                    n2 = np.array(n)
                    y2 = np.array(y)
                    n2[d] += k
                    y2[d] += x
                    d2, el2, r, _, _ = self.step(d, n2, y2, np.array(el))
                    if r is not None:
                        ends.append((q, n2, y2, c, r))
                        continue
                    key = (int(d2), tuple(n2.tolist()), tuple(y2.tolist()),
                           tuple(bool(v) for v in el2))
                    nxt[key] = nxt.get(key, 0.0) + q
            live = nxt
        for (_, n, y, _), pr in live.items():
            ends.append((pr, np.array(n), np.array(y), self.n_cohorts, "max_sample_size"))
        return ends

    def exact_oc(self, true_tox):
        """Exact operating characteristics by enumerating dose paths (small trials)."""
        from carkinetics.escalation.oc import summarize_paths
        ends = []
        for q, n, y, c, r in self.exact_paths(true_tox):
            sel = -1 if r in ("lowest_dose_eliminated", "extrasafe") else self._select(n, y)
            ends.append((q, n, y, c, r, sel))
        return summarize_paths(self, ends, true_tox)
