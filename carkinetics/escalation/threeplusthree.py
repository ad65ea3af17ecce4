"""The 3+3 design with its published rules and exact operating characteristics.

Rules: treat 3 at a dose; 0/3 DLT -> escalate; 1/3 -> treat 3 more at the same dose and
escalate if 1/6; >= 2/3 or >= 2/6 -> the dose exceeds the MTD and escalation stops.

Two MTD conventions:

* ``"expanded"`` (default; the MTD must have 6 participants with at most 1 DLT): when a dose
  exceeds the MTD, the next lower dose is the MTD if 6 were treated there; if only 3 were, 3
  more are treated and, if it then has >= 2/6, the search continues one dose lower. At the
  highest dose, 0/3 is expanded to 6 before it is declared the MTD.
* ``"plain"``: the MTD is the next lower dose, however many were treated there; at the
  highest dose, 0/3 or 1/6 declares it the MTD.

Operating characteristics are exact (every dose path enumerated with binomial probabilities).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from carkinetics._validation import check_option
from carkinetics.escalation.base import (
    Decision,
    Design,
    ParticipantPool,
    TrialState,
    check_probabilities,
)
from carkinetics.exceptions import DataError, ModelSpecError

__all__ = ["ThreePlusThree", "CONVENTIONS"]

CONVENTIONS = ("expanded", "plain")


class ThreePlusThree(Design):
    """3+3 design.

    Parameters
    ----------
    n_doses : int
    convention : {"expanded", "plain"}, default "expanded"
        MTD definition (see the module docstring).
    target : float, default 0.3
        Only used for the overdose summary of operating characteristics.
    """

    name = "3+3"

    def __init__(self, n_doses: int, convention: str = "expanded", target: float = 0.3) -> None:
        super().__init__(n_doses, target, cohort_size=3, n_cohorts=2 * n_doses)
        self.convention = check_option("convention", convention, CONVENTIONS, ModelSpecError)

    @property
    def n_slots(self) -> int:
        """At most 6 participants per dose."""
        return 6

    def rule(self, n: np.ndarray, y: np.ndarray, d: int) -> tuple[str, int | None, int | None,
                                                                   str]:
        """Next step from per-dose counts at current dose ``d``.

        Returns ``(action, next_dose, mtd, text)`` with 0-based levels (mtd None = no MTD).
        """
        n = np.asarray(n)
        y = np.asarray(y)
        for i in range(n.size):
            if n[i] not in (0, 3, 6):
                raise DataError(f"dose level {i + 1}: {n[i]} evaluable participants; the 3+3 "
                                "design treats cohorts of 3 (0, 3 or 6 per dose).")
        nd, yd = int(n[d]), int(y[d])
        top = self.n_doses - 1
        if nd == 0:
            return "stay", d, None, f"no participant at dose {d + 1} yet: treat 3"
        if nd == 3 and yd == 1:
            return "stay", d, None, f"1/3 DLT at dose {d + 1}: treat 3 more at the same dose"
        if yd >= 2:
            return self._below(n, y, d, f"{yd}/{nd} DLTs at dose {d + 1} (>= 2): dose exceeds "
                                        "the MTD")
        # cleared: 0/3 or <= 1/6
        txt = f"{yd}/{nd} DLT at dose {d + 1}"
        nxt_toxic = d < top and n[d + 1] > 0 and y[d + 1] >= 2
        if d < top and not nxt_toxic:
            if n[d + 1] > 0:
                raise DataError(f"dose level {d + 2} already treated while the trial is at "
                                f"dose {d + 1} with {txt}; not a 3+3 path.")
            return "escalate", d + 1, None, f"{txt}: escalate"
        if self.convention == "expanded" and nd == 3:
            where = "highest dose" if d == top else "next dose too toxic"
            return "stay", d, None, (f"{txt}, {where}: expand to 6 (the MTD needs 6 "
                                     "participants)")
        return "stop", None, d, f"{txt}: MTD = dose {d + 1}"

    def _below(self, n, y, d, txt):
        if d == 0:
            return "stop", None, None, txt + "; it is the lowest dose: no MTD"
        if self.convention == "plain":
            return "stop", None, d - 1, txt + f"; MTD = dose {d} (next lower dose)"
        m = d - 1
        while m >= 0:
            if n[m] == 3 and y[m] == 0:
                return "deescalate", m, None, txt + f"; dose {m + 1} has 3 participants: " \
                    "treat 3 more there"
            if n[m] == 6 and y[m] <= 1:
                return "stop", None, m, txt + f"; MTD = dose {m + 1} ({y[m]}/6)"
            m -= 1
        return "stop", None, None, txt + "; no lower dose has <= 1/6: no MTD"

    def decide(self, state: TrialState) -> Decision:
        """3+3 decision from the evaluable counts of ``state``."""
        self.check_state(state)
        n, y = state.n, state.y
        if state.n_pending.sum():
            return Decision("stay", state.current, state.current,
                            "participants still inside the DLT window: wait",
                            {"pending_per_dose": state.n_pending.tolist()})
        a, nxt, mtd, txt = self.rule(n, y, state.current)
        return Decision(a, nxt, state.current, txt + f" ({self.convention} MTD convention)",
                        {"n_per_dose": n.tolist(), "dlt_per_dose": y.tolist(),
                         "convention": self.convention}, mtd)

    def select_mtd(self, state: TrialState) -> int | None:
        """MTD when the rules say stop (None otherwise or with no MTD)."""
        return self.decide(state).mtd

    def simulate_pool(self, pool: ParticipantPool) -> dict:
        """Run every trial of ``pool`` (per-trial loop; the rules are cheap)."""
        if pool.n_doses != self.n_doses or pool.n_slots < 6:
            raise ModelSpecError(f"pool shape {pool.dlt.shape}: expected {self.n_doses} doses "
                                 "and >= 6 slots.")
        T, D = pool.n_trials, self.n_doses
        out = {"selected": np.empty(T, int), "n": np.zeros((T, D), int),
               "y": np.zeros((T, D), int), "cohorts": np.zeros(T, int),
               "reason": np.empty(T, object)}
        for t in range(T):
            n = np.zeros(D, int)
            y = np.zeros(D, int)
            d = 0
            while True:
                a, nxt, mtd, _ = self.rule(n, y, d)
                if a == "stop":
                    break
                d = nxt
                y[d] += int(pool.dlt[t, d, n[d]:n[d] + 3].sum())
                n[d] += 3
                out["cohorts"][t] += 1
            out["selected"][t] = -1 if mtd is None else mtd
            out["reason"][t] = "mtd_found" if mtd is not None else "no_mtd"
            out["n"][t], out["y"][t] = n, y
        return out

    def exact_paths(self, true_tox) -> list:
        """Every dose path: ``(probability, n, y, cohorts, reason, selected)``."""
        p = check_probabilities(true_tox)
        if p.size != self.n_doses:
            raise ModelSpecError(f"true_tox has {p.size} values; the design has "
                                 f"{self.n_doses} doses.")
        pk = [stats.binom.pmf(np.arange(4), 3, pi) for pi in p]
        ends: list = []

        def walk(n, y, d, pr, c):
            a, nxt, mtd, _ = self.rule(n, y, d)
            if a == "stop":
                ends.append((pr, n.copy(), y.copy(), c,
                             "mtd_found" if mtd is not None else "no_mtd",
                             -1 if mtd is None else mtd))
                return
            for x in range(4):
                q = pr * pk[nxt][x]
                if q == 0.0:
                    continue
                n2, y2 = n.copy(), y.copy()
                n2[nxt] += 3
                y2[nxt] += x
                walk(n2, y2, nxt, q, c + 1)

        D = self.n_doses
        walk(np.zeros(D, int), np.zeros(D, int), 0, 1.0, 0)
        return ends

    def exact_oc(self, true_tox):
        """Exact operating characteristics (all dose paths enumerated)."""
        from carkinetics.escalation.oc import summarize_paths
        return summarize_paths(self, self.exact_paths(true_tox), true_tox)
