"""BOIN with backfill cohorts at doses already cleared (operating characteristics).

Reference for the idea and the defaults: Zhao Y, Yuan Y, Korn EL, Freidlin B. Backfilling
patients in phase I dose-escalation trials using Bayesian optimal interval design (BOIN).
Clin Cancer Res 2024;30(4):673-679 (BF-BOIN), and the documented arguments of the openpharma
``bfboin`` R package (``n.cap = 12`` participants per dose, ``backfill.assign = "highest"``).
Neither the article's full text nor the package source was checked; the rules below are the
ones implemented, with their confidence.

Rules (per main cohort at the current dose ``d``):

1. Backfill opens at a dose ``b < d`` once the trial has escalated from ``b`` ("cleared"),
   while ``b`` is not eliminated, its backfill is not closed and fewer than ``cap``
   participants (main + backfill) were treated at ``b``. One backfill cohort of
   ``backfill_size`` participants (fewer if the cap is reached) is enrolled per main cohort,
   at the HIGHEST open dose (``backfill.assign = "highest"``). Medium confidence (BF-BOIN
   enrols backfill participants continuously while the main cohort is followed; one backfill
   cohort per main cohort is this simulator's discretisation).
2. Backfill participants count at the dose they received; every BOIN rule at a dose uses the
   pooled main + backfill data (as in BF-BOIN). High confidence.
3. The main cohort's BOIN decision at ``d`` is taken first (pooled data at ``d``); backfill
   participants are not counted towards the maximum number of main cohorts.
4. Then the backfill dose ``b`` is checked with BOIN's rules: if its pooled data meet the
   elimination rule, ``b`` and all higher doses are eliminated (the trial stops without an MTD
   when ``b`` is the lowest dose); if they meet the de-escalation boundary (or elimination),
   backfill closes at ``b`` and above and the next main cohort is treated at no higher than
   ``b - 1`` (at ``b = 0``: dose 0). With ``extrasafe`` the extra-safe rule applies at
   ``b = 0``. Low-medium confidence: BF-BOIN's published rule reacts to backfill toxicity
   by de-escalation below the backfill dose; its exact form was not verified.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from carkinetics.escalation.base import Decision, ParticipantPool, TrialState
from carkinetics.escalation.boin import BOIN
from carkinetics.exceptions import ModelSpecError

__all__ = ["BackfillBOIN"]


class BackfillBOIN(BOIN):
    """BOIN with backfill cohorts at cleared doses (see the module docstring).

    Parameters
    ----------
    n_doses : int
    target : float, default 0.3
    cohort_size, n_cohorts : int
    backfill_size : int, default 0
        Participants per backfill cohort (0 turns backfill off: plain BOIN).
    backfill_cap : int, default 12
        Largest number of participants (main + backfill) at a dose for it to receive backfill.
    **boin_options
        Options of :class:`~carkinetics.escalation.boin.BOIN` (``titration`` not supported).
    """

    name = "boin-backfill"

    def __init__(self, n_doses: int, target: float = 0.3, cohort_size: int = 3,
                 n_cohorts: int = 10, backfill_size: int = 0, backfill_cap: int = 12,
                 **boin_options: Any) -> None:
        if boin_options.get("titration"):
            raise ModelSpecError("titration=True is not supported with backfill.")
        if int(backfill_size) < 0 or int(backfill_cap) < 0:
            raise ModelSpecError(f"backfill_size={backfill_size!r}, backfill_cap="
                                 f"{backfill_cap!r}: expected non-negative integers.")
        self.backfill_size = int(backfill_size)
        self.backfill_cap = int(backfill_cap)
        super().__init__(n_doses, target, cohort_size, n_cohorts, **boin_options)

    @property
    def backfill(self) -> bool:
        """Whether backfill cohorts are opened."""
        return self.backfill_size > 0 and self.backfill_cap > 0

    @property
    def n_slots(self) -> int:
        """Slots per dose: main cohorts plus the backfill cap."""
        return self.n_cohorts * self.cohort_size + (self.backfill_cap if self.backfill else 0)

    def _backfill_alarm(self, b: int, n: np.ndarray, y: np.ndarray) -> tuple[bool, bool]:
        """(de-escalation boundary or elimination met at ``b``, elimination met at ``b``)."""
        nb, yb = int(n[b]), int(y[b])
        if nb == 0:
            return False, False
        _, bd, bel = self._b(nb)
        el = nb >= 3 and yb >= bel
        return (yb >= bd) or el, el

    def decide(self, state: TrialState) -> Decision:
        """BOIN's decision (pooled counts by delivered dose) plus the doses open to backfill.

        Doses open to backfill are inferred from the state as the treated doses below the
        current one that are not eliminated, below the cap, and whose pooled data do not meet
        the de-escalation boundary.
        """
        dec = super().decide(state)
        n, y = state.n, state.y
        elim = self.elimination(n, y)
        open_ = [b for b in range(state.current)
                 if self.backfill and n[b] > 0 and not elim[b] and n[b] < self.backfill_cap
                 and not self._backfill_alarm(b, n, y)[0]]
        nums = dict(dec.numbers, backfill_open_levels=[b + 1 for b in open_])
        return Decision(dec.action, dec.next_dose, dec.current_dose, dec.rule, nums, dec.mtd)

    def simulate_pool(self, pool: ParticipantPool) -> dict:
        """Run every trial of ``pool`` (per-trial loop).

        Returns per-trial ``selected``, ``n``, ``y`` (main + backfill, per dose), ``cohorts``
        (main cohorts), ``reason`` and ``n_backfill`` (backfill participants per dose).
        """
        self._check_pool(pool)
        T, D, k = pool.n_trials, self.n_doses, self.cohort_size
        sel = np.empty(T, int)
        N = np.zeros((T, D), int)
        Y = np.zeros((T, D), int)
        NB = np.zeros((T, D), int)
        coh = np.zeros(T, int)
        reason = np.empty(T, object)
        for t in range(T):
            dl = pool.dlt[t]
            n = np.zeros(D, int)
            y = np.zeros(D, int)
            nb = np.zeros(D, int)
            elim = np.zeros(D, bool)
            cleared = np.zeros(D, bool)
            closed = np.zeros(D, bool)
            d = self.start
            why = "max_sample_size"
            for _ in range(self.n_cohorts):
                y[d] += int(dl[d, n[d]:n[d] + k].sum())
                n[d] += k
                coh[t] += 1
                b = -1
                if self.backfill:
                    ok = [j for j in range(d) if cleared[j] and not elim[j] and not closed[j]
                          and n[j] < self.backfill_cap]
                    if ok:
                        b = ok[-1]
                        m = min(self.backfill_size, self.backfill_cap - int(n[b]))
                        y[b] += int(dl[b, n[b]:n[b] + m].sum())
                        n[b] += m
                        nb[b] += m
                d_prev = d
                d, elim, r, _, _ = self.step(d, n, y, elim)
                if r is None and d > d_prev:
                    cleared[d_prev] = True
                if r is None and b >= 0:
                    alarm, el = self._backfill_alarm(b, n, y)
                    if el:
                        elim = elim.copy()
                        elim[b:] = True
                        if b == 0:
                            r = "lowest_dose_eliminated"
                    if (r is None and self.extrasafe and b == 0 and n[0] >= 3
                            and self._safe_tab[n[0], y[0]]):
                        r = "extrasafe"
                    if alarm:
                        closed[b:] = True
                        d = min(d, max(b - 1, 0))
                if r is not None:
                    why = r
                    break
            reason[t] = why
            sel[t] = -1 if why in ("lowest_dose_eliminated", "extrasafe") else self._select(n, y)
            N[t], Y[t], NB[t] = n, y, nb
        return {"selected": sel, "n": N, "y": Y, "cohorts": coh, "reason": reason,
                "n_backfill": NB}

    simulate_loop = simulate_pool

    def exact_oc(self, true_tox):
        """Exact OC: BOIN's enumeration without backfill; not available with backfill."""
        if self.backfill:
            raise ModelSpecError("exact operating characteristics are not available with "
                                 "backfill; simulate instead (simulate_oc).")
        return super().exact_oc(true_tox)
