"""Immunoglobulins IgG, IgA, IgM (g/L): production by plasma cells, class-specific half-lives.

Each class follows the antibody equation of :mod:`carkinetics.pd._produced`: production by
short-lived (fraction ``f_short``) and long-lived plasma cells, first-order elimination
with its serum half-life. Derived (:func:`ig_events`): nadir, time to nadir, first day
below the hypogammaglobulinaemia thresholds (``igg_lln`` 7 g/L lower reference limit,
``igg_severe`` 4 g/L).

Sources: serum half-lives IgG 21 d (S/R: 21-23 d), IgA 6 d (R: Clin Exp Immunol
1973;13:521), IgM 5 d (R) (CLINICAL.md 3); baselines inside the adult ranges IgG 7-16,
IgA 0.7-4.0, IgM 0.4-2.3 g/L (R); ``f_short`` chosen (I) so that a CD19-only depletion
lowers IgG by about a fifth (CD19 CAR-T in oncology: total IgG -17.5%, Blood Adv
2019;3:3590, R) and IgM/IgA more than IgG (myeloma BCMA CAR-T: IgA falls most, R).
"""

from __future__ import annotations

from carkinetics.models.base import ParameterSpec
from carkinetics.pd._base import Arr, PDModule, Simulation
from carkinetics.pd._produced import antibody_rates, antibody_specs, nadir, time_below

__all__ = ["ImmunoglobulinModel", "ig_events"]

_SRC_RANGE = "R: inside the adult range (CLINICAL.md 3)"
_SRC_F = "I: CD19 CAR-T lowers total IgG by about 18% (Blood Adv 2019;3:3590, R)"
IG_PARAMS = (
    *antibody_specs("igg", "g/L", 11.0, 21.0, 0.2,
                    (_SRC_RANGE + " 7-16 g/L", "R: IgG t1/2 21-23 d", _SRC_F)),
    *antibody_specs("iga", "g/L", 2.2, 6.0, 0.4,
                    (_SRC_RANGE + " 0.7-4.0 g/L", "R: IgA t1/2 about 6 d (CEI 1973;13:521)",
                     "I: IgA falls more than IgG")),
    *antibody_specs("igm", "g/L", 1.2, 5.0, 0.6,
                    (_SRC_RANGE + " 0.4-2.3 g/L", "R: IgM t1/2 about 5 d",
                     "I: IgM mostly from short-lived plasma cells")),
)
IGG_LLN = ParameterSpec("igg_lln", "g/L", 7.0, 0.0, 100.0, "log",
                        "lower reference limit of IgG (hypogammaglobulinaemia)",
                        "R: adult IgG range 7.0-16.0 g/L")
IGG_SEVERE = ParameterSpec("igg_severe", "g/L", 4.0, 0.0, 100.0, "log",
                           "severe hypogammaglobulinaemia (replacement is usually considered)",
                           "I: common clinical threshold")


class ImmunoglobulinModel(PDModule):
    """IgG, IgA and IgM made by short- and long-lived plasma cells.

    Examples
    --------
    >>> ImmunoglobulinModel().endpoints
    {'igg': 'igg', 'iga': 'iga', 'igm': 'igm'}
    """

    name = "immunoglobulins"
    description = "IgG, IgA, IgM: production by plasma cells, class-specific half-lives"
    params = IG_PARAMS
    thresholds = (IGG_LLN, IGG_SEVERE)
    states = ("igg", "iga", "igm")
    endpoints = {"igg": "igg", "iga": "iga", "igm": "igm"}
    needs = ("ps", "pl")

    def params_for(self, endpoints):
        """Only the parameters of the antibodies among ``endpoints``."""
        codes = [c for c in self.states if c in endpoints]
        return [p.name for p in self.params
                if any(p.name in (f"{c}0", f"t_half_{c}", f"f_short_{c}") for c in codes)]

    def initial(self, p):
        """Baseline (pre-infusion steady state) of the states."""
        return {c: p[f"{c}0"].astype(float).copy() for c in self.states}

    def rates(self, t, y, p, sig):
        """``(u, a)`` of each state: ``dx/dt = u - a x``."""
        return {c: antibody_rates(c, p, sig) for c in self.states}


def ig_events(sim: Simulation, *, igg_lln: float = IGG_LLN.typical,
              igg_severe: float = IGG_SEVERE.typical) -> dict[str, Arr]:
    """Nadir (g/L) and day of the nadir of each class; first day of IgG below each threshold."""
    IGG_LLN.check(igg_lln)
    IGG_SEVERE.check(igg_severe)
    out: dict[str, Arr] = {}
    for c in ("igg", "iga", "igm"):
        out[f"{c}_nadir"], out[f"{c}_time_to_nadir"] = nadir(sim, c)
    out["time_igg_below_lln"] = time_below(sim, "igg", igg_lln)
    out["time_igg_below_severe"] = time_below(sim, "igg", igg_severe)
    return out
