"""CD19+ B cells: turnover with CAR-T-mediated killing, aplasia and reconstitution.

::

    dB/dt = kb * b0 - (kb + kill(C)) * B,          B(0) = b0
    kill(C) = kmax * C^hill / (ec50^hill + C^hill)   (kill="emax", sigmoid Emax)
    kill(C) = kkill * C                              (kill="mass_action")

``C`` is the CAR-T level (copies/ug, signal ``car``). With a constant level the count
approaches ``B_ss = kb b0 / (kb + kill(C))`` exponentially at rate ``kb + kill(C)`` (the
analytic limit checked in the tests). Aplasia is the count below ``aplasia_level``;
reconstitution the return above ``recon_level`` after aplasia (thresholds are
:attr:`thresholds`, overridable by name in :func:`bcell_events`).

Signal provided: ``b_rel = B / b0`` (read by the plasma-cell and antigen-driven CAR-T
modules).

Sources (confidence as in CLINICAL.md): ``b0`` below the healthy mean of 349-356
cells/uL (CDLI 2004;11:168, R) because SLE patients are lymphopenic (I); ``kb`` 0.02/day
(t1/2 about 35 d) from a rituximab CD19 PD model (PMC6624401, R); killing constants chosen
here (I) so that aplasia starts within the first week and B cells reappear after about 100
days as in Mackensen 2022 (110 +- 32 d, R) and GC012F (mean 126 d, R).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from carkinetics._validation import check_option
from carkinetics.exceptions import ModelSpecError
from carkinetics.models.base import ParameterSpec
from carkinetics.pd._base import Arr, PDModule, Simulation, first_crossing

__all__ = ["BCellModel", "bcell_events", "KILL_FORMS"]

KILL_FORMS = ("emax", "mass_action")

B0 = ParameterSpec("b0", "cells/uL", 150.0, 1.0, 5000.0, "log",
                   "pre-infusion CD19+ B-cell count (steady state)",
                   "I: below the healthy mean 349-356 cells/uL (CDLI 2004;11:168, R) as SLE "
                   "patients are lymphopenic")
KB = ParameterSpec("kb", "1/day", 0.02, 1e-4, 5.0, "log",
                   "B-cell loss rate (turnover; production kb * b0)",
                   "R: kout 0.02/d in a rituximab CD19 PD model (PMC6624401)")
KMAX = ParameterSpec("kmax", "1/day", 10.0, 1e-3, 1000.0, "log",
                     "maximal CAR-T killing rate of B cells", "I: aplasia within a week")
EC50 = ParameterSpec("ec50", "copies/ug", 1000.0, 1e-2, 1e7, "log",
                     "CAR-T level giving half the maximal killing",
                     "I: B cells return when the level falls below a few hundred copies/ug, "
                     "after about 100 days (Mackensen 2022 110 +- 32 d, R)")
HILL = ParameterSpec("hill", "1", 3.0, 0.2, 10.0, "log",
                     "steepness of the killing curve", "I")
KKILL = ParameterSpec("kkill", "ug/copies/day", 0.005, 1e-9, 100.0, "log",
                      "second-order (mass-action) killing rate constant", "I")
APLASIA = ParameterSpec("aplasia_level", "cells/uL", 5.0, 0.0, 1e4, "log",
                        "count below which the participant is in B-cell aplasia",
                        "I: a common working definition (< 5 cells/uL)")
RECON = ParameterSpec("recon_level", "cells/uL", 20.0, 0.0, 1e4, "log",
                      "count above which B cells count as reconstituted", "I")


class BCellModel(PDModule):
    """CD19+ B-cell turnover with CAR-T killing (Emax or mass action).

    Parameters
    ----------
    kill : {"emax", "mass_action"}, default "emax"
        Form of the killing rate.

    Examples
    --------
    >>> m = BCellModel()
    >>> m.param_names
    ('b0', 'kb', 'kmax', 'ec50', 'hill')
    >>> float(m.steady_state({"b0": 150.0, "kb": 0.02, "kmax": 10.0, "ec50": 1000.0,
    ...                       "hill": 1.0}, 1000.0))
    0.5976...
    """

    name = "bcell"
    description = "CD19+ B cells: turnover and CAR-T killing"
    states = ("b",)
    endpoints = {"cd19_b": "b"}
    needs = ("car",)
    provides = ("b_rel",)
    thresholds = (APLASIA, RECON)
    fixed_by_default = ("hill",)

    def __init__(self, kill: str = "emax") -> None:
        self.kill = check_option("kill", kill, KILL_FORMS, exc=ModelSpecError)
        self.params = (B0, KB, KMAX, EC50, HILL) if kill == "emax" else (B0, KB, KKILL)

    def kill_rate(self, c: Arr, p: Mapping[str, Arr]) -> Arr:
        """Killing rate (1/day) at CAR-T level ``c``."""
        c = np.maximum(np.asarray(c, dtype=float), 1e-300)
        if self.kill == "mass_action":
            return p["kkill"] * c
        x = np.exp(np.minimum(p["hill"] * (np.log(p["ec50"]) - np.log(c)), 700.0))
        return p["kmax"] / (1.0 + x)  # kmax c^h / (ec50^h + c^h)

    def precompute(self, car: Arr, p: Mapping[str, Arr]) -> dict[str, Arr]:
        """Killing rate on the whole grid when the CAR-T level is known in advance."""
        return {"kill_b": self.kill_rate(car, {k: v[:, None] for k, v in p.items()})}

    def steady_state(self, p: Mapping[str, Arr], c: Arr) -> Arr:
        """Count approached under a constant CAR-T level ``c``."""
        p = {k: np.asarray(v, dtype=float) for k, v in p.items()}
        return p["kb"] * p["b0"] / (p["kb"] + self.kill_rate(c, p))

    def initial(self, p):
        """Baseline (pre-infusion steady state) of the states."""
        return {"b": p["b0"].astype(float).copy()}

    def signals(self, t, y, p, sig):
        """Write this module's signals into ``sig``."""
        sig["b_rel"] = y["b"] / p["b0"]

    def rates(self, t, y, p, sig):
        """``(u, a)`` of each state: ``dx/dt = u - a x``."""
        kill = sig["kill_b"] if "kill_b" in sig else self.kill_rate(sig["car"], p)
        return {"b": (p["kb"] * p["b0"], p["kb"] + kill)}


def bcell_events(sim: Simulation, *, aplasia_level: float = APLASIA.typical,
                 recon_level: float = RECON.typical) -> dict[str, Arr]:
    """Derived B-cell events per participant (days; ``inf`` if the event never happens).

    Parameters
    ----------
    sim : Simulation
        Output of a system with a :class:`BCellModel` (state ``b``), ideally on a fine
        regular grid (``record_every=1`` or finer).
    aplasia_level, recon_level : float
        Thresholds (cells/uL).

    Returns
    -------
    dict
        ``time_to_aplasia`` (first fall below ``aplasia_level``), ``aplasia_duration``
        (until the count first rises back above ``aplasia_level``; ``inf`` while still in
        aplasia at the end), ``time_to_reconstitution`` (first rise above ``recon_level``
        after aplasia began) and ``b_nadir`` (cells/uL).
    """
    APLASIA.check(aplasia_level)
    RECON.check(recon_level)
    t, b = sim.times, sim["b"]
    t_ap = first_crossing(t, b, aplasia_level, direction="down")
    after = np.where(np.isfinite(t_ap), t_ap, t[-1] + 1.0)
    t_out = first_crossing(t, b, aplasia_level, direction="up", after=after)
    t_rec = first_crossing(t, b, recon_level, direction="up", after=after)
    with np.errstate(invalid="ignore"):
        dur = np.where(np.isfinite(t_ap), t_out - t_ap, np.nan)
    return {"time_to_aplasia": t_ap, "aplasia_duration": dur,
            "time_to_reconstitution": t_rec, "b_nadir": b.min(axis=1)}
