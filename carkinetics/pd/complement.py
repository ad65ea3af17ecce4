"""Complement C3 and C4: consumption by immune complexes driven by an autoantibody.

For ``X`` in (C3, C4), with ``D = A / a0`` the driving autoantibody relative to baseline::

    dX/dt = kdeg * x_norm - kdeg * (1 + q * D) * X,    q = x_norm / x_base - 1,
    kdeg = ln2 / t_half_x

so the level is ``x_base`` at baseline (``D = 1``) and recovers towards ``x_norm`` as the
autoantibody falls (``D -> 0``); with a constant ``D`` it approaches
``x_norm / (1 + q D)`` at rate ``kdeg (1 + q D)`` (tested).

Sources: C3 plasma half-life 49-66 h (Sliwinski & Zvaifler 1972, R): 2.4 d; C4 fractional
catabolic rate about 2%/h in controls (Clin Exp Immunol 1989;78:49, R): t1/2 = ln2/0.47 per
day = 1.5 d; normal levels C3 0.9-1.8, C4 0.16-0.50 g/L (R); baselines of hypocomplementaemic
SLE below the range (I).
"""

from __future__ import annotations

import math

from carkinetics._validation import check_option
from carkinetics.exceptions import ModelSpecError
from carkinetics.models.base import ParameterSpec
from carkinetics.pd._base import PDModule
from carkinetics.pd.autoantibodies import AUTOANTIBODIES

__all__ = ["ComplementModel"]

C_PARAMS = (
    ParameterSpec("c3_norm", "g/L", 1.2, 0.0, 10.0, "log",
                  "C3 without immune-complex consumption", "R: adult range 0.9-1.8 g/L"),
    ParameterSpec("c3_base", "g/L", 0.7, 0.0, 10.0, "log", "pre-infusion C3",
                  "I: hypocomplementaemic SLE, below 0.9 g/L"),
    ParameterSpec("t_half_c3", "day", 2.4, 0.01, 100.0, "log", "C3 plasma half-life",
                  "R: 49-66 h (Sliwinski & Zvaifler 1972)"),
    ParameterSpec("c4_norm", "g/L", 0.25, 0.0, 5.0, "log",
                  "C4 without immune-complex consumption", "R: adult range 0.16-0.50 g/L"),
    ParameterSpec("c4_base", "g/L", 0.1, 0.0, 5.0, "log", "pre-infusion C4",
                  "I: hypocomplementaemic SLE, below 0.16 g/L"),
    ParameterSpec("t_half_c4", "day", 1.5, 0.01, 100.0, "log", "C4 plasma half-life",
                  "R: FCR about 2%/h (Clin Exp Immunol 1989;78:49)"),
)


class ComplementModel(PDModule):
    """C3 and C4 consumed in proportion to a driving autoantibody.

    Parameters
    ----------
    driver : str, default "anti_dsdna"
        Autoantibody whose relative level drives consumption (needs its module).

    Examples
    --------
    >>> ComplementModel().needs
    ('anti_dsdna_rel',)
    """

    name = "complement"
    description = "complement C3/C4 consumption driven by an autoantibody"
    params = C_PARAMS
    states = ("c3", "c4")
    endpoints = {"c3": "c3", "c4": "c4"}

    def __init__(self, driver: str = "anti_dsdna") -> None:
        self.driver = check_option("driver", driver, AUTOANTIBODIES, exc=ModelSpecError)
        self.needs = (f"{driver}_rel",)

    def initial(self, p):
        """Baseline (pre-infusion steady state) of the states."""
        return {"c3": p["c3_base"].astype(float).copy(), "c4": p["c4_base"].astype(float).copy()}

    def rates(self, t, y, p, sig):
        """``(u, a)`` of each state: ``dx/dt = u - a x``."""
        d = sig[f"{self.driver}_rel"]
        out = {}
        for c in ("c3", "c4"):
            k = math.log(2.0) / p[f"t_half_{c}"]
            q = p[f"{c}_norm"] / p[f"{c}_base"] - 1.0
            out[c] = (k * p[f"{c}_norm"], k * (1.0 + q * d))
        return out
