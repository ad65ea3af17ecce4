"""Plasma cells: short-lived (fed from B cells) and long-lived BCMA+ (killed by the BCMA arm).

Both pools are relative to their pre-infusion steady state (1 = baseline)::

    dPs/dt = k_ps * (B / b0) - k_ps * Ps                         short-lived plasma cells
    dPl/dt = k_pl * (B / b0) - (k_pl + kill_bcma(C)) * Pl        long-lived BCMA+ plasma cells
    kill_bcma(C) = kmax_bcma * C / (ec50_bcma + C)

Short-lived plasma cells (plasmablasts) live a few days and vanish within days of B-cell
aplasia; long-lived plasma cells are CD19-negative, so a CD19 CAR spares them (they are
replenished only slowly from B cells) while the BCMA arm kills them directly. With
constant inputs both approach their steady states exponentially (tested). Signals: ``ps``
and ``pl``.

Sources: short-lived plasma cells "survive only several days" (Amanna & Slifka 2010, S;
3-5 days, S low quality): ``k_ps = ln2 / 4 d``; long-lived plasma cells persist for years
(Amanna NEJM 2007;357:1903, R), but the pool refills from B-cell progeny: half-time
6 months here (I); BCMA killing
constants chosen (I) so that IgG falls to about 2-3 g/L within months and recovers after
about a year, as after BCMA CAR-T in myeloma (Blood Adv 2021;5:5290; EJHP 2024, R). For a CD19-only
product set ``kmax_bcma`` to a negligible value.
"""

from __future__ import annotations

import math

from carkinetics.models.base import ParameterSpec
from carkinetics.pd._base import PDModule

__all__ = ["PlasmaCellModel"]

K_PS = ParameterSpec("k_ps", "1/day", math.log(2) / 4.0, 1e-3, 10.0, "log",
                     "loss rate of short-lived plasma cells",
                     "S: short-lived plasma cells live 3-5 days (Amanna & Slifka 2010)")
K_PL = ParameterSpec("k_pl", "1/day", math.log(2) / 180.0, 1e-6, 1.0, "log",
                     "turnover rate of long-lived plasma cells",
                     "I: niche refilled from B-cell progeny with a half-time of 6 months (IgG "
                     "recovers about 1 year after BCMA CAR-T, Blood Adv 2021;5:5290, R); "
                     "individual LLPC live for years (Amanna NEJM 2007, R)")
KMAX_BCMA = ParameterSpec("kmax_bcma", "1/day", 0.05, 1e-9, 100.0, "log",
                          "maximal killing rate of BCMA+ plasma cells by the BCMA arm",
                          "I: IgG nadir about 2 g/L months after BCMA CAR-T (ide-cel: month 7, "
                          "EJHP 2024;31:A208, R; Blood Adv 2021;5:5290, R)")
EC50_BCMA = ParameterSpec("ec50_bcma", "copies/ug", 5000.0, 1e-2, 1e7, "log",
                          "CAR-T level giving half the maximal BCMA killing", "I")


class PlasmaCellModel(PDModule):
    """Short-lived and long-lived (BCMA+) plasma cells, relative to baseline.

    Examples
    --------
    >>> PlasmaCellModel().states
    ('ps', 'pl')
    """

    name = "plasma"
    description = "short-lived plasma cells fed from B cells; long-lived BCMA+ plasma cells"
    params = (K_PS, K_PL, KMAX_BCMA, EC50_BCMA)
    states = ("ps", "pl")
    endpoints = {}
    needs = ("car", "b_rel")
    provides = ("ps", "pl")

    def kill_rate(self, c, p):
        """BCMA killing rate (1/day) at CAR-T level ``c``."""
        return p["kmax_bcma"] * c / (p["ec50_bcma"] + c)

    def precompute(self, car, p):
        """BCMA killing rate on the whole grid when the CAR-T level is known in advance."""
        return {"kill_bcma": self.kill_rate(car, {k: v[:, None] for k, v in p.items()})}

    def initial(self, p):
        """Baseline (pre-infusion steady state) of the states."""
        one = p["k_ps"] * 0.0 + 1.0
        return {"ps": one, "pl": one.copy()}

    def signals(self, t, y, p, sig):
        """Write this module's signals into ``sig``."""
        sig["ps"] = y["ps"]
        sig["pl"] = y["pl"]

    def rates(self, t, y, p, sig):
        """``(u, a)`` of each state: ``dx/dt = u - a x``."""
        b = sig["b_rel"]
        return {"ps": (p["k_ps"] * b, p["k_ps"]),
                "pl": (p["k_pl"] * b, p["k_pl"] + (sig["kill_bcma"] if "kill_bcma" in sig
                                                    else self.kill_rate(sig["car"], p)))}
