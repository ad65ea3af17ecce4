"""Antigen-driven CAR-T kinetics: expansion stimulated by the CD19+ and BCMA+ cells it kills.

The mechanistic counterpart of ``piecewise``: instead of a programmed expansion to
``tmax``, effector CAR-T cells ``E`` proliferate while target antigen is present and the
targets are the B cells and BCMA+ plasma cells that the CAR-T cells kill (modules
:class:`~carkinetics.pd.bcell.BCellModel` and :class:`~carkinetics.pd.plasma.PlasmaCellModel`
in the same system), so the peak and its timing follow from target depletion::

    Ag    = B / b0 + w_bcma * Pl                    antigen (relative to the B-cell pool)
    dE/dt = [rho e^{-k_exh t} Ag / (ag50 + Ag) - d_e - k_em] E,     E(0) = e0
    dM/dt = k_em E - beta M,                             M(0) = 0
    car   = E + M                                        (copies/ug; the killing level)

The proliferative capacity wanes (exhaustion, rate ``k_exh``), so the cells contract once
the targets are gone or the capacity is spent, and B cells can reconstitute while memory
CAR-T cells persist (without it the system has a chronic equilibrium of CAR-T level and
suppressed B cells). With the antigen held constant ``log E`` has the closed form
``log e0 + s rho (1 - e^{-k_exh t}) / k_exh - (d_e + k_em) t`` with ``s = Ag / (ag50 + Ag)``
(tested; ``M`` against quadrature). The level parameter
scaled by dose is ``e0``.

Sources (I unless stated): ``e0`` is the infused level at 1e6 cells/kg (the piecewise
trial truth ``cmax / foldx`` = 10 copies/ug); ``rho`` about 1/day gives a Tmax near 10 days
(CLINICAL.md 1d: Tmax about 10 d in autoimmune CAR-T, R); ``d_e + k_em`` matches the fast
decline of the trial's piecewise truth (alpha 0.12/day); ``beta`` its persistence
(0.006/day).
"""

from __future__ import annotations

import numpy as np

from carkinetics.models.base import ParameterSpec
from carkinetics.pd._base import PDModule

__all__ = ["AntigenDrivenCAR"]

A_PARAMS = (
    ParameterSpec("e0", "copies/ug", 10.0, 0.0, 1e9, "log",
                  "CAR-T level right after the infusion (at the dose)",
                  "I: cmax / foldx of the trial truth at 1e6 cells/kg"),
    ParameterSpec("rho", "1/day", 1.4, 1e-3, 20.0, "log",
                  "maximal antigen-driven proliferation rate",
                  "I: Tmax near 10 d (CLINICAL.md 1d, R)"),
    ParameterSpec("ag50", "1", 0.02, 1e-6, 100.0, "log",
                  "antigen level (relative) giving half-maximal proliferation", "I"),
    ParameterSpec("d_e", "1/day", 0.2, 1e-4, 10.0, "log", "effector death rate",
                  "I: with k_exh, peak near day 13 and B-cell aplasia of about 70 days"),
    ParameterSpec("k_em", "1/day", 0.02, 1e-5, 10.0, "log",
                  "effector to memory conversion rate", "I"),
    ParameterSpec("beta", "1/day", 0.006, 1e-5, 10.0, "log", "memory death rate",
                  "I: persistence half-life about 115 d (trial truth)"),
    ParameterSpec("k_exh", "1/day", 0.12, 1e-6, 10.0, "log",
                  "rate at which the proliferative capacity wanes (exhaustion)", "I"),
    ParameterSpec("w_bcma", "1", 0.05, 0.0, 100.0, "log",
                  "antigen of the BCMA+ plasma-cell pool relative to the B-cell pool", "I"),
)


class AntigenDrivenCAR(PDModule):
    """Effector/memory CAR-T cells driven by CD19+ and BCMA+ target cells.

    Examples
    --------
    >>> AntigenDrivenCAR().provides
    ('car',)
    """

    name = "antigen"
    description = "antigen-driven CAR-T expansion on CD19+ and BCMA+ targets"
    params = A_PARAMS
    states = ("car_e", "car_m")
    endpoints = {"car_qpcr": "car"}
    needs = ("b_rel", "pl")
    provides = ("car",)

    def initial(self, p):
        """Baseline (pre-infusion steady state) of the states."""
        return {"car_e": p["e0"].astype(float).copy(), "car_m": p["e0"] * 0.0}

    def signals(self, t, y, p, sig):
        """Write this module's signals into ``sig``."""
        sig["car"] = y["car_e"] + y["car_m"]

    def rates(self, t, y, p, sig):
        """``(u, a)`` of each state: ``dx/dt = u - a x``."""
        ag = sig["b_rel"] + p["w_bcma"] * sig["pl"]
        grow = p["rho"] * np.exp(-p["k_exh"] * t) * ag / (p["ag50"] + ag)
        return {"car_e": (p["e0"] * 0.0, p["d_e"] + p["k_em"] - grow),
                "car_m": (p["k_em"] * y["car_e"], p["beta"])}

    @staticmethod
    def constant_antigen_log_e(t, p, ag):
        """Closed form of ``log E`` with the antigen held at ``ag`` (used by the tests)."""
        s = ag / (p["ag50"] + ag)
        return (np.log(p["e0"]) + s * p["rho"] * -np.expm1(-p["k_exh"] * t) / p["k_exh"]
                - (p["d_e"] + p["k_em"]) * t)
