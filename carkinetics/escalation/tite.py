"""TITE-BOIN: time-to-event BOIN for late-onset DLTs (Yuan, Lin, Li, Nie, Warren 2018).

Reference: Yuan Y, Lin R, Li D, Nie L, Warren KE. Time-to-event Bayesian optimal interval
design to accelerate phase I trials. Clin Cancer Res 2018;24(20):4921-4930 (supplementary
appendix A for the imputation). The rules below are written from descriptions of the method
(the article's abstract and an independent public R implementation's documentation of the
article's equations and published decision tables); the article itself and the BOIN
package's ``get.oc.tite`` source were NOT available to check. Confidence is stated per rule.

Notation at the current dose: ``n`` participants treated (delivered level), ``y`` observed
DLTs, ``r`` participants who completed the DLT assessment (a DLT completes it), ``c = n - r``
pending participants, ``f_i`` the follow-up of pending participant ``i`` as a fraction of the
DLT window ``W`` (capped at 1), ``STFT = sum_i f_i`` the standardized total follow-up time.

Rules, applied in this order (``lambda_e``, ``lambda_d`` are BOIN's boundaries):

1. No pending participant at the current dose (``c = 0``): BOIN's decision exactly
   (:meth:`carkinetics.escalation.boin.BOIN.step`, including ``n_earlystop``). High confidence
   (TITE-BOIN reduces to BOIN with complete data).
2. Elimination: ``n >= 3`` and ``P(p > target | y, n) > cutoff`` (Beta(1, 1) prior) with the
   pending participants counted as without DLT; the dose and all higher are eliminated, and
   the trial stops if it is the lowest. Medium-high confidence.
3. De-escalation that holds whatever the pending outcomes: ``y / n >= lambda_d``.
   Medium-high confidence.
4. Suspension: accrual is suspended while more than ``max_pending_ratio`` (default 0.5, i.e.
   more than half) of the participants at the current dose are pending. High confidence for
   the 50 % default (the article's rule); returned as action ``stay`` with
   ``numbers['suspend'] = True`` (the package's decision set has no separate action).
5. Imputation: each pending outcome is replaced by its expected value under a uniform time to
   DLT within the window, ``E[Y_i | no DLT by f_i] = p (1 - f_i) / (1 - p f_i)``, with the
   approximation ``1 - p f_i ~ 1 - p``, so that the imputed DLT rate is

       p_tilde = (y + q (c - STFT)) / n,   q = p_hat / (1 - p_hat),
       p_hat = (y + a) / (r + 1),  a = target / 2   (posterior mean, Beta(a, 1 - a) prior).

   Escalate when ``p_tilde <= lambda_e`` (unless the next dose is eliminated or this is the
   highest dose), de-escalate when ``p_tilde >= lambda_d`` AND ``y / n >= target`` (the
   published decision tables allow de-escalation only once the observed rate reaches the
   target; the appendix equation read literally differs), else stay. Medium confidence (the
   prior ``a = target / 2`` and the ``1 - p`` approximation are from a secondary description
   of the supplementary appendix).

Additional choices (not from the article; stated so they are not hidden): ``n_earlystop`` is
checked only when the current dose has no pending participant; once the maximum sample size
is enrolled the recommendation is to wait for the pending participants, then stop and select
the MTD with BOIN's isotonic ``select.mtd`` on complete data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from carkinetics.escalation.base import (
    Decision,
    TrialState,
    check_probabilities,
    trial_seed,
)
from carkinetics.escalation.boin import BOIN, boin_select_mtd
from carkinetics.exceptions import DataError, ModelSpecError

__all__ = ["TiteState", "TiteBOIN", "imputed_dlt_rate", "simulate_tite_oc"]


def imputed_dlt_rate(y: int, n: int, follow_frac: Any, target: float) -> float:
    """TITE-BOIN imputed DLT rate at one dose.

    Parameters
    ----------
    y : int
        Observed DLTs.
    n : int
        Participants treated (completed and pending).
    follow_frac : sequence of float
        Follow-up of each PENDING participant as a fraction of the DLT window (capped at 1).
    target : float
        Target DLT probability (prior ``Beta(target / 2, 1 - target / 2)``).

    Returns
    -------
    float
        ``(y + q (c - STFT)) / n`` with ``q = p_hat / (1 - p_hat)``,
        ``p_hat = (y + target / 2) / (r + 1)``, ``r = n - c``.

    Examples
    --------
    >>> round(imputed_dlt_rate(1, 6, [0.5, 0.25, 0.1], 0.3), 6)
    0.311257
    """
    f = np.minimum(np.asarray(follow_frac, dtype=float).ravel(), 1.0)
    c = f.size
    if n < 1 or y < 0 or y + c > n:
        raise DataError(f"y={y}, n={n}, pending={c}: expected y + pending <= n and n >= 1.")
    r = n - c
    p_hat = (y + target / 2.0) / (r + 1.0)
    q = p_hat / (1.0 - p_hat)
    return float((y + q * (c - f.sum())) / n)


@dataclass(frozen=True)
class TiteState:
    """A trial state with follow-up times for TITE designs.

    Parameters
    ----------
    state : TrialState
        Participants, delivered levels, DLTs and ``pending`` flags.
    follow_up : array of float
        Follow-up time of each participant since dosing (same unit as ``window``); used for
        pending participants only.
    window : float
        Length of the DLT assessment window.

    Raises
    ------
    DataError
        Wrong length, negative follow-up, or a pending participant followed for the whole
        window (that participant has completed the assessment: set ``pending`` to False).
    """

    state: TrialState
    follow_up: np.ndarray
    window: float

    def __post_init__(self) -> None:
        fu = np.asarray(self.follow_up, dtype=float).ravel()
        n = self.state.dose_level.size
        if fu.size != n:
            raise DataError(f"follow_up: {fu.size} values for {n} participants.",
                            source="trial state")
        if not (np.isfinite(self.window) and self.window > 0):
            raise DataError(f"window={self.window!r}: expected a positive DLT window length.",
                            source="trial state")
        problems = []
        for i in range(n):
            who = f"participant {self.state.ids[i]}"
            if not np.isfinite(fu[i]) or fu[i] < 0:
                problems.append(f"{who}: follow_up={fu[i]!r}; expected >= 0.")
            elif self.state.pending[i] and fu[i] >= self.window:
                problems.append(f"{who}: pending but followed {fu[i]} >= window "
                                f"{self.window}; the assessment is complete (in_window=0).")
        if problems:
            raise DataError(problems, source="trial state")
        object.__setattr__(self, "follow_up", fu)
        object.__setattr__(self, "window", float(self.window))

    @property
    def follow_frac(self) -> np.ndarray:
        """Follow-up as a fraction of the window, capped at 1."""
        return np.minimum(self.follow_up / self.window, 1.0)


class TiteBOIN(BOIN):
    """TITE-BOIN design (imputation method of Yuan et al. 2018); see the module docstring.

    Parameters
    ----------
    n_doses : int
    target : float, default 0.3
    cohort_size, n_cohorts : int
    max_pending_ratio : float, default 0.5
        Suspend accrual while more than this fraction of the current dose's participants
        are pending.
    **boin_options
        Options of :class:`~carkinetics.escalation.boin.BOIN` (``n_earlystop``, ``cutoff``,
        ``extrasafe``, ``offset``, ``bound_mtd``, ``start``, ``p_saf``, ``p_tox``);
        ``titration`` is not supported.
    """

    name = "tite-boin"
    #: OC need calendar time (:func:`simulate_tite_oc`), not a participant pool.
    calendar_time = True

    def __init__(self, n_doses: int, target: float = 0.3, cohort_size: int = 3,
                 n_cohorts: int = 10, max_pending_ratio: float = 0.5,
                 **boin_options: Any) -> None:
        if boin_options.get("titration"):
            raise ModelSpecError("titration=True is not supported by TiteBOIN.")
        super().__init__(n_doses, target, cohort_size, n_cohorts, **boin_options)
        if not 0 < float(max_pending_ratio) <= 1:
            raise ModelSpecError(f"max_pending_ratio={max_pending_ratio!r}: expected a "
                                 "fraction in (0, 1].")
        self.max_pending_ratio = float(max_pending_ratio)

    def decide(self, state: TrialState | TiteState) -> Decision:  # type: ignore[override]
        """TITE-BOIN decision at the current dose.

        A plain :class:`TrialState` is accepted only without pending participants (then the
        decision is BOIN's); with pending participants give a :class:`TiteState`.
        """
        if isinstance(state, TrialState):
            if state.pending.any():
                raise DataError("TITE-BOIN needs the follow-up time of pending participants: "
                                "give a TiteState(state, follow_up, window).")
            state = TiteState(state, np.zeros(state.dose_level.size), 1.0)
        st = state.state
        self.check_state(st)
        d = st.current
        at = st.delivered_level == d
        pend_d = at & st.pending
        c = int(pend_d.sum())
        n_all = np.bincount(st.delivered_level, minlength=self.n_doses)
        y_all = np.bincount(st.delivered_level, weights=st.dlt.astype(float),
                            minlength=self.n_doses).astype(int)
        total = int(n_all.sum())
        any_pending = bool(st.pending.any())
        if c == 0:
            dec = BOIN.decide(self, TrialState(st.n_doses, st.dose_level, st.dlt,
                                               st.delivered_level, None, st.exposure, st.ids,
                                               st.current))
            return self._finish(dec, st, any_pending, total)
        n, y = int(n_all[d]), int(y_all[d])
        r = n - c
        fr = state.follow_frac[pend_d]
        stft = float(fr.sum())
        lam_e, lam_d = self.bounds.lambda_e, self.bounds.lambda_d
        nums: dict = {"dose_level": d + 1, "n": n, "dlt": y, "completed": r, "pending": c,
                      "stft": stft, "lambda_e": lam_e, "lambda_d": lam_d,
                      "n_per_dose": n_all.tolist(), "dlt_per_dose": y_all.tolist(),
                      "pending_per_dose": st.n_pending.tolist()}
        # 2. elimination, pending counted as without DLT
        post = stats.beta.sf(self.target, y_all + 1, n_all - y_all + 1)
        bad = (n_all >= 3) & (post > self.cutoff)
        first = int(np.argmax(bad)) if bad.any() else self.n_doses
        elim = np.arange(self.n_doses) >= first
        nums["eliminated_levels"] = (np.flatnonzero(elim) + 1).tolist()
        if elim[d] and d == 0:
            return Decision("stop", None, d, f"{y}/{n} DLTs (pending counted as no DLT): "
                            f"P(p > {self.target}) > {self.cutoff} at the lowest dose; stop, "
                            "no MTD", nums)
        if elim[d]:
            if first == 0:
                return Decision("stop", None, d, "every dose eliminated: stop, no MTD", nums)
            return Decision("deescalate", first - 1, d, f"dose {first + 1} and higher "
                            f"eliminated; de-escalate to dose {first}", nums)
        # 3. de-escalation whatever the pending outcomes
        if y / n >= lam_d:
            if d == 0:
                return Decision("stay", d, d, f"y/n = {y}/{n} >= lambda_d at the lowest dose: "
                                "stay", nums)
            return Decision("deescalate", d - 1, d, f"y/n = {y}/{n} >= lambda_d "
                            f"{lam_d:.4f} whatever the pending outcomes: de-escalate", nums)
        # 4. suspension
        if c > self.max_pending_ratio * n:
            nums["suspend"] = True
            return Decision("stay", d, d, f"{c} of {n} participants at dose {d + 1} pending "
                            f"(> {self.max_pending_ratio:g}): suspend accrual until more "
                            "complete the DLT window", nums)
        if total >= self.n_cohorts * self.cohort_size:
            nums["suspend"] = True
            return Decision("stay", d, d, "maximum sample size enrolled: wait for the "
                            "pending participants, then select the MTD", nums)
        # 5. imputed DLT rate
        pt = imputed_dlt_rate(y, n, fr, self.target)
        nums["imputed_dlt_rate"] = pt
        if pt <= lam_e:
            if d == self.n_doses - 1:
                return Decision("stay", d, d, f"imputed rate {pt:.4f} <= lambda_e at the "
                                "highest dose: stay", nums)
            if elim[d + 1]:
                return Decision("stay", d, d, f"imputed rate {pt:.4f} <= lambda_e but dose "
                                f"{d + 2} is eliminated: stay", nums)
            return Decision("escalate", d + 1, d, f"imputed rate {pt:.4f} <= lambda_e "
                            f"{lam_e:.4f}: escalate", nums)
        if pt >= lam_d and y / n >= self.target and d > 0:
            return Decision("deescalate", d - 1, d, f"imputed rate {pt:.4f} >= lambda_d "
                            f"{lam_d:.4f} and y/n >= target: de-escalate", nums)
        return Decision("stay", d, d, f"imputed rate {pt:.4f}: stay", nums)

    def _finish(self, dec: Decision, st: TrialState, any_pending: bool,
                total: int) -> Decision:
        """BOIN decision adapted to pending participants at other doses.

        Escalation is allowed (TITE); a stop for maximum sample size waits for the pending
        participants.
        """
        if dec.action == "stop" and any_pending and "maximum sample size" in dec.rule:
            nums = dict(dec.numbers, suspend=True)
            return Decision("stay", dec.current_dose, dec.current_dose,
                            "maximum sample size enrolled: wait for the pending participants, "
                            "then select the MTD", nums)
        if dec.action == "stop" and dec.mtd is not None and any_pending:
            # select on evaluable participants only (pending ones are not counted)
            return Decision(dec.action, None, dec.current_dose, dec.rule, dec.numbers,
                            BOIN.select_mtd(self, st))
        return dec

    def select_mtd(self, state: TrialState | TiteState) -> int | None:  # type: ignore[override]
        """BOIN's isotonic selection on the completed participants."""
        st = state.state if isinstance(state, TiteState) else state
        return BOIN.select_mtd(self, st)

    def simulate_pool(self, pool):
        """Not available: TITE-BOIN needs calendar time; use :func:`simulate_tite_oc`."""
        raise ModelSpecError("TITE-BOIN operating characteristics need staggered accrual in "
                             "calendar time: use carkinetics.escalation.tite.simulate_tite_oc "
                             "(accrual_rate, window).")

    simulate_loop = simulate_pool

    def exact_oc(self, true_tox):
        """Not available (calendar-time design); use :func:`simulate_tite_oc`."""
        return self.simulate_pool(None)


# -- operating characteristics with staggered accrual ------------------------------------
def _one_trial(design: TiteBOIN, p: np.ndarray, seed: int, i: int, accrual_rate: float,
               window: float) -> tuple:
    """Simulate trial ``i`` with staggered accrual.

    Exponential inter-arrival times (rate per unit time); DLT times uniform within the window
    for toxic participants.
    """
    D = design.n_doses
    N = design.n_cohorts * design.cohort_size
    g = np.random.Generator(np.random.Philox(trial_seed(seed, i)))
    u_tox = g.random((D, N))
    u_time = g.random((D, N))
    gaps = g.exponential(1.0 / accrual_rate, N)
    lvl: list[int] = []
    dlt: list[bool] = []
    t_dlt: list[float] = []
    t_in: list[float] = []
    slot = np.zeros(D, int)
    d = design.start
    t = 0.0
    reason = "max_sample_size"
    cohorts = 0

    def state_at(time: float) -> TiteState:
        e = np.asarray(t_in)
        td = np.asarray(t_dlt)
        obs = np.asarray(dlt) & (td <= time)
        done = obs | (time >= e + window)
        st = TrialState(D, np.asarray(lvl, int), obs, pending=~done, current=d)
        return TiteState(st, np.minimum(time - e, window * (1 - 1e-12)), window)

    k = 0  # participants enrolled
    stopped = False
    while k < N:
        if k > 0:
            while True:
                dec = design.decide(state_at(t))
                if dec.action == "stop":
                    stopped = True
                    reason = ("n_earlystop" if "n_earlystop" in dec.rule else
                              "extrasafe" if "extrasafe" in dec.rule else
                              "lowest_dose_eliminated")
                    break
                if dec.numbers.get("suspend"):
                    e = np.asarray(t_in)
                    ends = np.where(np.asarray(dlt), np.asarray(t_dlt), e + window)
                    later = ends[ends > t]
                    t = float(later.min())
                    continue
                d = int(dec.next_dose)
                break
            if stopped:
                break
        cohorts += 1
        for j in range(design.cohort_size):
            if k >= N:
                break
            if k > 0 and j > 0:
                t += gaps[k]
            s = slot[d]
            lvl.append(d)
            tox = bool(u_tox[d, s] < p[d])
            dlt.append(tox)
            t_in.append(t)
            t_dlt.append(t + u_time[d, s] * window if tox else np.inf)
            slot[d] += 1
            k += 1
        if k < N:
            t += gaps[k]
    n = np.bincount(np.asarray(lvl, int), minlength=D)
    y = np.bincount(np.asarray(lvl, int), weights=np.asarray(dlt, float),
                    minlength=D).astype(int)
    end = float(np.max(np.where(np.asarray(dlt), np.asarray(t_dlt), np.asarray(t_in) + window)))
    if reason in ("lowest_dose_eliminated", "extrasafe"):
        sel = -1
    else:
        m = boin_select_mtd(n, y, design.target, design.cutoff, design.extrasafe,
                            design.offset, design.bound_mtd, design.bounds.lambda_d)[0]
        sel = -1 if m is None else m
    return sel, n, y, cohorts, reason, end


def _tite_chunk(args: tuple) -> dict:
    design, p, seed, start, stop, rate, window = args
    out = [_one_trial(design, p, seed, i, rate, window) for i in range(start, stop)]
    return {"selected": np.array([o[0] for o in out], int),
            "n": np.array([o[1] for o in out], int), "y": np.array([o[2] for o in out], int),
            "cohorts": np.array([o[3] for o in out], int),
            "reason": np.array([o[4] for o in out], dtype=object),
            "duration": np.array([o[5] for o in out], float)}


def simulate_tite_oc(design: TiteBOIN, true_tox: Any, *, n_trials: int, seed: int,
                     accrual_rate: float, window: float = 28.0, workers: int = 1,
                     chunk_trials: int = 250, progress: bool = False, scheduler: Any = None,
                     store: Any = None, resume: bool = False):
    """Operating characteristics of TITE-BOIN with staggered accrual.

    Participants arrive one at a time with exponential gaps (``accrual_rate`` per unit
    time); a cohort's dose is decided when its first participant arrives, and while the
    decision is to suspend accrual the arrival waits until the next DLT or window end. A
    toxic participant's DLT time is uniform within the window. Trial ``i`` uses the stream
    ``trial_seed(seed, i)`` (``SeedSequence(seed).spawn``), so results do not depend on
    ``workers`` or ``chunk_trials``.

    Parameters
    ----------
    design : TiteBOIN
    true_tox : sequence of float
    n_trials, seed : int
    accrual_rate : float
        Participants per unit time (the unit of ``window``).
    window : float, default 28
        DLT window length.
    workers, chunk_trials : int
    progress : bool, default False
    scheduler, store, resume
        Backend and resume store of :func:`~carkinetics.parallel.map_units` (as in
        :func:`~carkinetics.escalation.oc.simulate_oc`).

    Returns
    -------
    OCResult
        ``extra`` holds ``mean_duration_time`` (time from the first dose to the end of the
        last participant's window).
    """
    from carkinetics.escalation.oc import summarize
    from carkinetics.parallel import UnitFailure, map_units
    p = check_probabilities(true_tox)
    if p.size != design.n_doses:
        raise ModelSpecError(f"true_tox has {p.size} values; the design has "
                             f"{design.n_doses} doses.")
    if not (accrual_rate > 0 and window > 0):
        raise ModelSpecError(f"accrual_rate={accrual_rate!r}, window={window!r}: expected "
                             "positive numbers.")
    if int(n_trials) < 1:
        raise ModelSpecError(f"n_trials={n_trials!r}: expected a positive integer.")
    n_trials = int(n_trials)
    units = [(design, p, int(seed), s, min(s + chunk_trials, n_trials), float(accrual_rate),
              float(window)) for s in range(0, n_trials, int(chunk_trials))]
    parts = map_units(_tite_chunk, units, workers=workers, progress=progress, desc="trials",
                      chunksize=1, scheduler=scheduler, store=store, resume=resume)
    for part in parts:
        if isinstance(part, UnitFailure):
            raise RuntimeError(f"simulation chunk failed: {part.message}")
    res = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    oc = summarize(design, res, p)
    oc.extra["mean_duration_time"] = float(res["duration"].mean())
    oc.extra.pop("mean_duration_days", None)
    return oc

