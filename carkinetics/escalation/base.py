"""Shared protocol of the dose-escalation designs.

* :class:`TrialState` -- who received which dose, delivered dose level, DLT flags, pending
  participants (still inside the DLT window) and optional exposure, with validation;
* :class:`Decision` -- the recommendation for the next cohort, the rule and the numbers behind it;
* :class:`Design` -- base class: ``decide(state) -> Decision`` and ``select_mtd(state)``;
* :class:`ParticipantPool` and :func:`draw_pool` -- virtual participants per trial, per dose and
  per participant slot (DLT indicator and optional exposure), drawn from per-trial random
  streams spawned from one root seed, so that every design sees the SAME participants (common
  random numbers) and results do not depend on the number of workers or on chunking.

Counting convention: a participant counts at the dose level actually DELIVERED (a participant
who received less than the assigned dose counts at the lower level); participants still inside
the DLT window (``pending``) are not counted, and a DLT flagged for a pending participant is an
error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from carkinetics.exceptions import DataError, ModelSpecError

__all__ = ["TrialState", "Decision", "Design", "ParticipantPool", "draw_pool", "trial_seed",
           "weighted_quantiles",
           "check_target", "check_probabilities", "OCResult", "ACTIONS"]

ACTIONS = ("escalate", "stay", "deescalate", "stop")


def check_target(target: float) -> float:
    """Return ``target`` as float; :class:`ModelSpecError` unless 0 < target < 1."""
    t = float(target)
    if not (0.0 < t < 1.0) or not np.isfinite(t):
        raise ModelSpecError(f"target={target!r}: expected a DLT probability strictly between 0 "
                             "and 1 (e.g. 0.3).")
    return t


def check_probabilities(p: Any, name: str = "true_tox") -> np.ndarray:
    """Return ``p`` as a 1-D float array; :class:`ModelSpecError` unless every value in [0, 1]."""
    arr = np.atleast_1d(np.asarray(p, dtype=float))
    if arr.ndim != 1 or arr.size == 0:
        raise ModelSpecError(f"{name}: expected a non-empty list of probabilities, one per dose.")
    bad = [(i + 1, float(v)) for i, v in enumerate(arr) if not (0.0 <= v <= 1.0)]
    if bad:
        raise ModelSpecError(f"{name}: values {bad} (dose, value) outside [0, 1]; expected DLT "
                             "probabilities between 0 and 1.")
    return arr


@dataclass(frozen=True)
class TrialState:
    """Participants treated so far in an escalation trial.

    Parameters
    ----------
    n_doses : int
        Number of dose levels of the design (levels are 0-based internally).
    dose_level : array of int
        Assigned dose level of each participant (0-based).
    dlt : array of bool
        DLT observed.
    delivered_level : array of int, optional
        Dose level actually delivered (<= assigned); default the assigned level.
    pending : array of bool, optional
        Still inside the DLT window (not yet evaluable); default all False.
    exposure : array of float, optional
        Observed or predicted exposure (e.g. Cmax) per participant, for exposure designs.
    ids : array, optional
        Participant identifiers (default 1..N).
    current : int, optional
        Dose level of the most recent cohort (default: assigned level of the last participant,
        or 0 with no participants).

    Raises
    ------
    DataError
        A dose level outside the design, a delivered level above the assigned one, or a DLT for
        a participant still inside the DLT window.
    """

    n_doses: int
    dose_level: np.ndarray
    dlt: np.ndarray
    delivered_level: np.ndarray | None = None
    pending: np.ndarray | None = None
    exposure: np.ndarray | None = None
    ids: np.ndarray | None = None
    current: int | None = None

    def __post_init__(self) -> None:
        if int(self.n_doses) < 1:
            raise ModelSpecError(f"n_doses={self.n_doses!r}: expected at least 1 dose level.")
        object.__setattr__(self, "n_doses", int(self.n_doses))
        lvl = np.asarray(self.dose_level, dtype=float).ravel()
        n = lvl.size
        dlt = np.asarray(self.dlt, dtype=float).ravel()
        deliv = (lvl.copy() if self.delivered_level is None
                 else np.asarray(self.delivered_level, dtype=float).ravel())
        pend = (np.zeros(n) if self.pending is None
                else np.asarray(self.pending, dtype=float).ravel())
        ids = (np.arange(1, n + 1) if self.ids is None else np.asarray(self.ids).ravel())
        problems = []
        for name, arr in (("dlt", dlt), ("delivered_level", deliv), ("pending", pend),
                          ("ids", ids)):
            if arr.size != n:
                problems.append(f"{name}: {arr.size} values for {n} participants.")
        if problems:
            raise DataError(problems, source="trial state")
        for i in range(n):
            who = f"participant {ids[i]}"
            if not np.isfinite(lvl[i]) or lvl[i] != int(lvl[i]) or not 0 <= lvl[i] < self.n_doses:
                problems.append(f"{who}: dose level {_lvl(lvl[i])} is not in the design (levels "
                                f"1..{self.n_doses}).")
            if (not np.isfinite(deliv[i]) or deliv[i] != int(deliv[i])
                    or not 0 <= deliv[i] < self.n_doses):
                problems.append(f"{who}: delivered dose level {_lvl(deliv[i])} is not in the "
                                f"design (levels 1..{self.n_doses}).")
            elif np.isfinite(lvl[i]) and deliv[i] > lvl[i]:
                problems.append(f"{who}: delivered level {_lvl(deliv[i])} above assigned level "
                                f"{_lvl(lvl[i])}.")
            if dlt[i] not in (0.0, 1.0):
                problems.append(f"{who}: dlt={dlt[i]!r}; expected 0 or 1.")
            if pend[i] not in (0.0, 1.0):
                problems.append(f"{who}: in_window={pend[i]!r}; expected 0 or 1.")
            elif pend[i] == 1.0 and dlt[i] == 1.0:
                problems.append(f"{who}: DLT counted while still inside the DLT window "
                                "(in_window=1); record the DLT after the window or set "
                                "in_window=0.")
        if problems:
            raise DataError(problems, source="trial state")
        object.__setattr__(self, "dose_level", lvl.astype(int))
        object.__setattr__(self, "delivered_level", deliv.astype(int))
        object.__setattr__(self, "dlt", dlt.astype(bool))
        object.__setattr__(self, "pending", pend.astype(bool))
        object.__setattr__(self, "ids", ids)
        if self.exposure is not None:
            ex = np.asarray(self.exposure, dtype=float).ravel()
            if ex.size != n:
                raise DataError(f"exposure: {ex.size} values for {n} participants.",
                                source="trial state")
            object.__setattr__(self, "exposure", ex)
        cur = self.current
        if cur is None:
            cur = int(lvl[-1]) if n else 0
        if not 0 <= int(cur) < self.n_doses:
            raise DataError(f"current dose level {_lvl(cur)} is not in the design (levels "
                            f"1..{self.n_doses}).", source="trial state")
        object.__setattr__(self, "current", int(cur))

    @classmethod
    def from_counts(cls, n: Any, y: Any, current: int | None = None) -> TrialState:
        """State from per-dose counts ``n`` (participants) and ``y`` (DLTs), all evaluable."""
        n = np.asarray(n, dtype=int)
        y = np.asarray(y, dtype=int)
        if n.shape != y.shape or n.ndim != 1:
            raise DataError("n and y: expected two lists of equal length, one per dose.")
        if np.any(n < 0) or np.any(y < 0) or np.any(y > n):
            raise DataError(f"counts n={n.tolist()}, y={y.tolist()}: expected 0 <= y <= n.")
        lvl = np.repeat(np.arange(n.size), n)
        dlt = np.concatenate([np.r_[np.ones(k), np.zeros(m - k)] for k, m in zip(y, n, strict=True)]
                             ) if n.sum() else np.zeros(0)
        if current is None:
            current = int(lvl[-1]) if lvl.size else 0
        return cls(n_doses=n.size, dose_level=lvl, dlt=dlt, current=current)

    @property
    def n(self) -> np.ndarray:
        """Evaluable participants per dose level (by delivered level, pending excluded)."""
        ok = ~self.pending
        return np.bincount(self.delivered_level[ok], minlength=self.n_doses)

    @property
    def y(self) -> np.ndarray:
        """DLTs per dose level (by delivered level, pending excluded)."""
        ok = ~self.pending
        return np.bincount(self.delivered_level[ok], weights=self.dlt[ok].astype(float),
                           minlength=self.n_doses).astype(int)

    @property
    def n_pending(self) -> np.ndarray:
        """Participants still inside the DLT window, per delivered dose level."""
        return np.bincount(self.delivered_level[self.pending], minlength=self.n_doses)

    @property
    def n_shortfall(self) -> int:
        """Participants who received a lower dose level than assigned."""
        return int(np.sum(self.delivered_level < self.dose_level))

    def last_cohort_dlt(self, cohort_size: int) -> bool:
        """Whether any of the last ``cohort_size`` evaluable participants had a DLT."""
        ok = ~self.pending
        return bool(np.any(self.dlt[ok][-cohort_size:])) if ok.any() else False


def _lvl(v: Any) -> str:
    """A 0-based level printed 1-based for messages."""
    try:
        f = float(v)
        return str(int(f) + 1) if np.isfinite(f) and f == int(f) else repr(v)
    except (TypeError, ValueError):
        return repr(v)


@dataclass(frozen=True)
class Decision:
    """Recommendation for the next cohort.

    Attributes
    ----------
    action : str
        One of ``escalate``, ``stay``, ``deescalate``, ``stop``.
    next_dose : int or None
        0-based dose level of the next cohort (None when stopping).
    current_dose : int
        0-based dose level the decision was taken at.
    rule : str
        The rule applied, in words.
    numbers : dict
        The numbers behind it (counts, boundaries, posterior probabilities...).
    mtd : int or None
        Selected MTD (0-based) when ``action == 'stop'`` and a dose is selected.
    """

    action: str
    next_dose: int | None
    current_dose: int
    rule: str
    numbers: dict = field(default_factory=dict)
    mtd: int | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ModelSpecError(f"action={self.action!r}: expected one of {ACTIONS}.")

    def to_dict(self) -> dict:
        """JSON-ready dictionary (dose levels 1-based, as in protocols)."""
        return {"action": self.action,
                "current_dose_level": self.current_dose + 1,
                "next_dose_level": None if self.next_dose is None else self.next_dose + 1,
                "mtd_level": None if self.mtd is None else self.mtd + 1,
                "rule": self.rule, "numbers": _jsonable(self.numbers)}

    def to_frame(self):
        """One-row DataFrame of :meth:`to_dict` (numbers as JSON text)."""
        import json

        import pandas as pd
        d = self.to_dict()
        d["numbers"] = json.dumps(d["numbers"])
        return pd.DataFrame([d])


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def weighted_quantiles(values: np.ndarray, weights: np.ndarray,
                       probs: Sequence[float]) -> np.ndarray:
    """Quantiles of a discrete (quadrature or grid) posterior, per column of ``values``.

    Parameters
    ----------
    values : ndarray (G, D)
        A quantity at each of G posterior points, for D doses.
    weights : ndarray (G,)
        Posterior weights of the points (any positive scale).
    probs : sequence of float
        Probabilities in (0, 1).

    Returns
    -------
    ndarray (len(probs), D)
        The smallest value whose posterior CDF reaches each probability, linearly
        interpolated between neighbouring points of the CDF (the inverse of the piecewise
        linear CDF through the midpoints of the steps).

    Examples
    --------
    >>> weighted_quantiles(np.array([[0.1], [0.2], [0.3]]), np.ones(3), [0.5]).round(3)
    array([[0.2]])
    """
    v = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    order = np.argsort(v, axis=0, kind="stable")
    vs = np.take_along_axis(v, order, axis=0)
    ws = w[order]
    cdf = (np.cumsum(ws, axis=0) - 0.5 * ws) / ws.sum(axis=0)
    return np.stack([np.array([np.interp(q, cdf[:, d], vs[:, d]) for d in range(v.shape[1])])
                     for q in probs])


def trial_seed(seed: int, trial: int) -> np.random.SeedSequence:
    """The ``trial``-th child of ``SeedSequence(seed)`` (equal to ``spawn(...)[trial]``)."""
    return np.random.SeedSequence(entropy=seed, spawn_key=(int(trial),))


@dataclass(frozen=True)
class ParticipantPool:
    """Pre-drawn virtual participants for ``n_trials`` trials.

    Attributes
    ----------
    dlt : bool array (n_trials, n_doses, n_slots)
        DLT indicator of the k-th participant treated at each dose in each trial.
    exposure : float array (n_trials, n_doses, n_slots) or None
        Exposure of the same participants (for exposure-informed designs).
    time_to_dlt : float array (n_trials, n_doses, n_slots) or None
        Time of the DLT as a fraction of the DLT window (nan without DLT; TITE designs).
    first_trial : int
        Index of the first trial in the root stream (pools of chunks concatenate).
    """

    dlt: np.ndarray
    exposure: np.ndarray | None = None
    time_to_dlt: np.ndarray | None = None
    first_trial: int = 0

    def __post_init__(self) -> None:
        d = np.asarray(self.dlt, dtype=bool)
        if d.ndim != 3:
            raise ModelSpecError(f"dlt: expected a (n_trials, n_doses, n_slots) array, got shape "
                                 f"{d.shape}.")
        object.__setattr__(self, "dlt", d)
        for name in ("exposure", "time_to_dlt"):
            v = getattr(self, name)
            if v is not None and np.shape(v) != d.shape:
                raise ModelSpecError(f"{name}: shape {np.shape(v)} differs from dlt {d.shape}.")

    @property
    def n_trials(self) -> int:
        """Number of trials."""
        return self.dlt.shape[0]

    @property
    def n_doses(self) -> int:
        """Number of dose levels."""
        return self.dlt.shape[1]

    @property
    def n_slots(self) -> int:
        """Participant slots per dose."""
        return self.dlt.shape[2]

    def subset(self, start: int, stop: int) -> ParticipantPool:
        """Trials ``start:stop`` (local indices)."""
        sl = slice(start, stop)
        return ParticipantPool(self.dlt[sl],
                               None if self.exposure is None else self.exposure[sl],
                               None if self.time_to_dlt is None else self.time_to_dlt[sl],
                               self.first_trial + start)


def draw_pool(true_tox: Any, n_trials: int, n_slots: int, seed: int,
              first_trial: int = 0) -> ParticipantPool:
    """Draw a pool of virtual participants from per-dose true DLT probabilities.

    Trial ``i`` uses its own stream ``trial_seed(seed, first_trial + i)``; within a trial the
    uniform ``u[d, k]`` of slot ``k`` at dose ``d`` gives ``dlt = u < p_d``. Pools drawn in
    chunks therefore equal the pool drawn at once, and designs run on the same pool see the
    same participants.

    Parameters
    ----------
    true_tox : sequence of float
        True DLT probability per dose.
    n_trials, n_slots : int
        Trials, and participant slots per dose (the most participants a dose can receive).
    seed : int
        Root seed.
    first_trial : int, default 0
        Index of the first trial in the root stream.

    Returns
    -------
    ParticipantPool

    Examples
    --------
    >>> a = draw_pool([0.1, 0.3], 4, 6, seed=1)
    >>> b = draw_pool([0.1, 0.3], 2, 6, seed=1, first_trial=2)
    >>> bool((a.dlt[2:] == b.dlt).all())
    True
    """
    p = check_probabilities(true_tox)
    u = uniforms(n_trials, p.size, n_slots, seed, first_trial)
    return ParticipantPool(u < p[None, :, None], first_trial=first_trial)


def uniforms(n_trials: int, n_doses: int, n_slots: int, seed: int,
             first_trial: int = 0) -> np.ndarray:
    """Uniforms (n_trials, n_doses, n_slots), one spawned stream per trial."""
    u = np.empty((n_trials, n_doses, n_slots))
    for i in range(n_trials):
        g = np.random.Generator(np.random.Philox(trial_seed(seed, first_trial + i)))
        u[i] = g.random((n_doses, n_slots))
    return u


@dataclass(frozen=True)
class OCResult:
    """Operating characteristics of a design in one scenario.

    Attributes
    ----------
    design : str
    true_tox : array or None
    selection : array (n_doses,)
        Probability of selecting each dose as MTD.
    stop : float
        Probability of stopping without an MTD.
    mean_patients, mean_dlts : array (n_doses,)
        Expected participants and DLTs per dose.
    overdose_risk : float or None
        Probability that more than ``overdose_fraction`` of participants are treated above the
        MTD (doses with true toxicity > target), as in the BOIN package's ``risk of poor
        allocation``; None without true toxicities.
    early_stop : float
        Probability the trial stops before using its full sample size (any reason).
    mean_duration : float
        Expected number of cohorts treated (duration in cohort windows).
    stop_reasons : dict
        Fraction of trials ending for each reason.
    n_trials : int or None
        Simulated trials (None for exact results).
    exact : bool
    """

    design: str
    true_tox: np.ndarray | None
    selection: np.ndarray
    stop: float
    mean_patients: np.ndarray
    mean_dlts: np.ndarray
    overdose_risk: float | None
    early_stop: float
    mean_duration: float
    stop_reasons: dict
    n_trials: int | None = None
    exact: bool = False
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dictionary (percentages for selection and stop)."""
        out = {"design": self.design, "exact": self.exact, "n_trials": self.n_trials,
               "true_tox": None if self.true_tox is None else list(map(float, self.true_tox)),
               "selection_pct": [100 * float(v) for v in self.selection],
               "stop_pct": 100 * float(self.stop),
               "mean_patients": list(map(float, self.mean_patients)),
               "mean_dlts": list(map(float, self.mean_dlts)),
               "total_patients": float(np.sum(self.mean_patients)),
               "total_dlts": float(np.sum(self.mean_dlts)),
               "overdose_risk_pct": (None if self.overdose_risk is None
                                     else 100 * float(self.overdose_risk)),
               "early_stop_pct": 100 * float(self.early_stop),
               "mean_duration_cohorts": float(self.mean_duration),
               "stop_reasons_pct": {k: 100 * float(v) for k, v in self.stop_reasons.items()}}
        out.update(_jsonable(self.extra))
        return out

    def to_frame(self):
        """One row per dose: true toxicity, selection %, mean patients and DLTs."""
        import pandas as pd
        k = self.selection.size
        return pd.DataFrame({"dose_level": np.arange(1, k + 1),
                             "true_tox": (np.full(k, np.nan) if self.true_tox is None
                                          else self.true_tox),
                             "selection_pct": 100 * self.selection,
                             "mean_patients": self.mean_patients,
                             "mean_dlts": self.mean_dlts})


class Design:
    """Base class of escalation designs.

    Subclasses implement :meth:`decide` and :meth:`select_mtd`; designs with a vectorised
    simulator implement :meth:`simulate_pool`. ``n_doses`` is the number of dose levels and
    ``target`` the target DLT probability.
    """

    name: str = "design"

    def __init__(self, n_doses: int, target: float = 0.3, cohort_size: int = 3,
                 n_cohorts: int = 10) -> None:
        if int(n_doses) < 1:
            raise ModelSpecError(f"n_doses={n_doses!r}: expected at least 1.")
        if int(cohort_size) < 1 or int(n_cohorts) < 1:
            raise ModelSpecError(f"cohort_size={cohort_size!r}, n_cohorts={n_cohorts!r}: "
                                 "expected positive integers.")
        self.n_doses = int(n_doses)
        self.target = check_target(target)
        self.cohort_size = int(cohort_size)
        self.n_cohorts = int(n_cohorts)

    def check_state(self, state: TrialState) -> TrialState:
        """Raise :class:`DataError` if ``state`` does not match this design's doses."""
        if state.n_doses != self.n_doses:
            raise DataError(f"trial state has {state.n_doses} dose levels; the design has "
                            f"{self.n_doses}.")
        return state

    def decide(self, state: TrialState) -> Decision:  # pragma: no cover - abstract
        """Decision for the next cohort given ``state``."""
        raise NotImplementedError

    def select_mtd(self, state: TrialState) -> int | None:  # pragma: no cover - abstract
        """MTD (0-based level) at the end of the trial, or None (no dose selected)."""
        raise NotImplementedError

    @property
    def n_slots(self) -> int:
        """Participant slots per dose a simulated trial can need."""
        return self.n_cohorts * self.cohort_size

    def simulate_pool(self, pool: ParticipantPool) -> dict:  # pragma: no cover - abstract
        """Run every trial of ``pool``; returns per-trial arrays (see :func:`summarize`)."""
        raise NotImplementedError
