"""Disease activity: indirect-response model with an Emax link to a depletion driver.

For a score ``S`` (SLEDAI-2K, DAS28-ESR, PGA, HAQ-DI) driven by ``D``, the relative level of
a driver (``b_rel`` for B cells, ``<antibody>_rel`` for an autoantibody)::

    dep   = 1 - min(D, 1)                                 depletion of the driver
    E     = imax * dep / (d50 + dep)                      Emax link (0 <= E < imax)
    dS/dt = kout * s0 * (1 - E) - kout * S,  S(0) = s0    indirect response (inhibition
                                                          of the score's "production")

With a constant driver ``S`` approaches ``s0 (1 - E)`` at rate ``kout`` (tested); ``kout``
sets how fast the clinical picture follows the immunology (``ln2 / kout`` is the response
half-time).

Sources (baselines): SLEDAI-2K mean 10.6 at entry of BCMA-CD19 CAR-T (ARD 2024, R) and
median 16 in Mackensen 2022 (R): 12 here (I); DAS28-ESR 5.5, PGA 2.0, HAQ-DI 1.5 are
active-disease values chosen here (I). Response half-times of a few weeks match SLEDAI-2K
reaching 0-2.7 by month 3 (Mackensen 2022, ARD 2024, R) (I).

The synthetic trial's descriptor-level scores (SLEDAI-2K from its items, BILAG-2004, joint
counts) are simulated by :mod:`carkinetics.simulate.scores`; this continuous model is the
one fitted to them and used for exposure-response.
"""

from __future__ import annotations

import math

import numpy as np

from carkinetics._validation import check_option
from carkinetics.exceptions import ModelSpecError
from carkinetics.models.base import ParameterSpec
from carkinetics.pd._base import PDModule

__all__ = ["DiseaseActivityModel", "SCORES"]

#: score -> (baseline, upper bound of the scale, source of the baseline)
SCORES: dict[str, tuple[float, float, str]] = {
    "sledai2k": (12.0, 105.0, "I: between mean 10.6 (ARD 2024) and median 16 (Mackensen 2022)"),
    "das28_esr": (5.5, 10.0, "I: active RA (DAS28 > 5.1)"),
    "pga": (2.0, 3.0, "I: active disease on the 0-3 scale"),
    "haq_di": (1.5, 3.0, "I: moderate disability"),
}


class DiseaseActivityModel(PDModule):
    """Indirect-response disease-activity score with an Emax link.

    Parameters
    ----------
    score : {"sledai2k", "das28_esr", "pga", "haq_di"}, default "sledai2k"
    driver : str, default "anti_dsdna_rel"
        Signal driving the response (``b_rel`` or ``<autoantibody>_rel``).

    Examples
    --------
    >>> DiseaseActivityModel("pga", driver="b_rel").param_names
    ('pga0', 'kout_pga', 'imax_pga', 'd50_pga')
    """

    description = "disease-activity score: indirect response, Emax link to depletion"

    def __init__(self, score: str = "sledai2k", driver: str = "anti_dsdna_rel") -> None:
        self.score = check_option("score", score, SCORES, exc=ModelSpecError)
        if not isinstance(driver, str) or not (driver == "b_rel" or driver.endswith("_rel")):
            raise ModelSpecError(f"Invalid driver={driver!r}; expected 'b_rel' or "
                                 "'<autoantibody>_rel' (e.g. 'anti_dsdna_rel').")
        self.driver = driver
        s0, top, src = SCORES[score]
        self.name = f"disease_{score}"
        self.params = (
            ParameterSpec(f"{score}0", "score", s0, 0.0, top, "log",
                          f"pre-infusion {score}", src),
            ParameterSpec(f"kout_{score}", "1/day", math.log(2.0) / 21.0, 1e-4, 10.0, "log",
                          "rate at which the score follows its target",
                          "I: response half-time 3 weeks (remission by month 3, R)"),
            ParameterSpec(f"imax_{score}", "1", 0.9, 0.0, 1.0, "logit",
                          "maximal fractional improvement",
                          "I: near-complete remission (SLEDAI-2K 16 -> 0, Mackensen 2022, R)"),
            ParameterSpec(f"d50_{score}", "1", 0.3, 0.0, 1.0, "logit",
                          "depletion of the driver giving half the maximal improvement", "I"),
        )
        self.states = (score,)
        self.endpoints = {score: score} if score != "das28_esr" else {}
        self.needs = (driver,)
        self.provides = ()

    def target(self, d, p):
        """Level approached when the driver stays at relative level ``d``."""
        s = self.score
        dep = 1.0 - np.minimum(d, 1.0)
        e = p[f"imax_{s}"] * dep / (p[f"d50_{s}"] + dep)
        return p[f"{s}0"] * (1.0 - e)

    def initial(self, p):
        """Baseline (pre-infusion steady state) of the states."""
        return {self.score: p[f"{self.score}0"].astype(float).copy()}

    def rates(self, t, y, p, sig):
        """``(u, a)`` of each state: ``dx/dt = u - a x``."""
        k = p[f"kout_{self.score}"]
        return {self.score: (k * self.target(sig[self.driver], p), k)}
