"""Autoantibodies made by an autoreactive fraction of plasma cells; seroconversion to negative.

Each autoantibody follows the antibody equation of :mod:`carkinetics.pd._produced`: its
autoreactive plasma cells are a fixed fraction of the short-lived and long-lived pools, so
production scales with ``f_short Ps + (1 - f_short) Pl`` of the antibody; it is eliminated
with its own half-life. The antibody-specific ``f_short`` encodes where it is made:
anti-dsDNA falls to near zero after CD19 CAR-T (Erlangen update, R/S: plasmablast-derived),
anti-Ro/SSA is long-lived-plasma-cell type and persists under CD19 alone but became
negative by month 3 on BCMA-CD19 CAR-T (ARD 2024;83:1304, R). Seroconversion to negative is
the first day below the positivity cut-off ``<code>_cutoff``.

Sources: elimination half-lives are not measured for any of these antibodies (CLINICAL.md
3, I): IgG-class antibodies take the IgG half-life (21 d, R), IgM rheumatoid factor the IgM
half-life (5 d, R); baselines and cut-offs are those of the synthetic trial's assays (I).
Signal provided per antibody: ``<code>_rel`` (relative to baseline).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from carkinetics._validation import check_option
from carkinetics.data.schema import ENDPOINTS
from carkinetics.exceptions import ModelSpecError
from carkinetics.models.base import ParameterSpec
from carkinetics.pd._base import Arr, PDModule, Simulation
from carkinetics.pd._produced import antibody_rates, antibody_specs, time_below

__all__ = ["AutoantibodyModel", "AUTOANTIBODIES", "seroconversion"]

_IGG_T = "I: IgG-class autoantibody, IgG t1/2 21 d (R); no direct measurement (CLINICAL.md 3)"
#: code -> (baseline, t_half, f_short, cut-off, f_short source)
AUTOANTIBODIES: dict[str, tuple[float, float, float, float, str]] = {
    "anti_dsdna": (200.0, 21.0, 0.85, 30.0, "I: falls to near zero after CD19 CAR-T "
                   "(Erlangen update, R/S)"),
    "ana": (640.0, 21.0, 0.6, 80.0, "I"),
    "anti_ro_ssa": (120.0, 21.0, 0.25, 20.0, "I: LLPC-type, persists on CD19 alone; negative "
                    "by month 3 on BCMA-CD19 (ARD 2024;83:1304, R)"),
    "rf": (120.0, 5.0, 0.6, 20.0, "I: IgM-RF, IgM t1/2 5 d (R)"),
    "anti_topo1": (150.0, 21.0, 0.5, 20.0, "I"),
    "anti_rnap3": (100.0, 21.0, 0.5, 20.0, "I"),
}


def _specs(code: str) -> tuple[ParameterSpec, ...]:
    a0, th, fs, _, src = AUTOANTIBODIES[code]
    t_src = "I: IgM-RF takes the IgM t1/2 5 d (R)" if code == "rf" else _IGG_T
    return antibody_specs(code, ENDPOINTS[code].unit, a0, th, fs,
                          ("I: typical positive baseline of the synthetic trial", t_src, src))


def _cutoff(code: str) -> ParameterSpec:
    return ParameterSpec(f"{code}_cutoff", ENDPOINTS[code].unit, AUTOANTIBODIES[code][3], 0.0,
                         1e7, "log", f"positivity cut-off of {code}", "I: assay cut-off")


class AutoantibodyModel(PDModule):
    """Autoantibodies from autoreactive plasma cells.

    Parameters
    ----------
    antibodies : sequence of str, default ("anti_dsdna",)
        Any of :data:`AUTOANTIBODIES`.

    Examples
    --------
    >>> AutoantibodyModel(["anti_dsdna", "anti_ro_ssa"]).param_names[:3]
    ('anti_dsdna0', 't_half_anti_dsdna', 'f_short_anti_dsdna')
    """

    description = "autoantibodies made by an autoreactive fraction of plasma cells"
    needs = ("ps", "pl")

    def __init__(self, antibodies: Sequence[str] = ("anti_dsdna",)) -> None:
        if isinstance(antibodies, str):
            antibodies = (antibodies,)
        if not antibodies:
            raise ModelSpecError("Invalid antibodies=(); expected at least one of "
                                 f"{list(AUTOANTIBODIES)}.")
        for a in antibodies:
            check_option("antibodies", a, AUTOANTIBODIES, exc=ModelSpecError)
        self.antibodies = tuple(antibodies)
        self.name = "autoantibodies"
        self.params = tuple(s for a in self.antibodies for s in _specs(a))
        self.thresholds = tuple(_cutoff(a) for a in self.antibodies)
        self.states = self.antibodies
        self.endpoints = {a: a for a in self.antibodies}
        self.provides = tuple(f"{a}_rel" for a in self.antibodies)

    def params_for(self, endpoints):
        """Only the parameters of the antibodies among ``endpoints``."""
        codes = [c for c in self.states if c in endpoints]
        return [p.name for p in self.params
                if any(p.name in (f"{c}0", f"t_half_{c}", f"f_short_{c}") for c in codes)]

    def initial(self, p):
        """Baseline (pre-infusion steady state) of the states."""
        return {a: p[f"{a}0"].astype(float).copy() for a in self.antibodies}

    def signals(self, t, y, p, sig):
        """Write this module's signals into ``sig``."""
        for a in self.antibodies:
            sig[f"{a}_rel"] = y[a] / p[f"{a}0"]

    def rates(self, t, y, p, sig):
        """``(u, a)`` of each state: ``dx/dt = u - a x``."""
        return {a: antibody_rates(a, p, sig) for a in self.antibodies}


def seroconversion(sim: Simulation, antibody: str, cutoff: float | None = None) -> Arr:
    """First day the antibody falls below its cut-off (``inf`` if never; 0 if negative).

    Parameters
    ----------
    sim : Simulation
    antibody : str
        Code of the antibody (a state of ``sim``).
    cutoff : float, optional
        Positivity cut-off (default: the antibody's ``<code>_cutoff`` typical value).
    """
    check_option("antibody", antibody, AUTOANTIBODIES, exc=ModelSpecError)
    c = _cutoff(antibody).typical if cutoff is None else float(cutoff)
    out = time_below(sim, antibody, c)
    return np.where(sim[antibody][:, 0] < c, 0.0, out)
