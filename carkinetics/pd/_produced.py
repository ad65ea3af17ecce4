"""Antibodies produced by plasma cells (shared by immunoglobulins and autoantibodies).

For an antibody ``A`` with baseline ``a0``, elimination half-life ``t_half`` and a fraction
``f`` of its production coming from short-lived plasma cells::

    dA/dt = k * a0 * (f * Ps + (1 - f) * Pl) - k * A,     k = ln2 / t_half,   A(0) = a0

so production equals elimination at baseline (``Ps = Pl = 1``). With constant plasma-cell
levels ``A`` approaches ``a0 (f Ps + (1 - f) Pl)`` at rate ``k``; with production stopped it
falls with its own half-life (both tested).
"""

from __future__ import annotations

import math

import numpy as np

from carkinetics.models.base import ParameterSpec
from carkinetics.pd._base import Arr, Simulation, first_crossing

__all__ = ["antibody_rates", "antibody_specs", "nadir"]


def antibody_specs(code: str, unit: str, a0: float, t_half: float, f_short: float,
                   sources: tuple[str, str, str]) -> tuple[ParameterSpec, ...]:
    """The three parameters ``<code>0``, ``t_half_<code>``, ``f_short_<code>``."""
    return (
        ParameterSpec(f"{code}0", unit, a0, 0.0, 1e7, "log", f"pre-infusion {code}",
                      sources[0]),
        ParameterSpec(f"t_half_{code}", "day", t_half, 0.1, 1000.0, "log",
                      f"elimination half-life of {code}", sources[1]),
        ParameterSpec(f"f_short_{code}", "1", f_short, 0.0, 1.0, "logit",
                      f"fraction of {code} made by short-lived plasma cells", sources[2]),
    )


def antibody_rates(code: str, p, sig) -> tuple[Arr, Arr]:
    """``(u, a)`` of antibody ``code``."""
    k = math.log(2.0) / p[f"t_half_{code}"]
    f = p[f"f_short_{code}"]
    return k * p[f"{code}0"] * (f * sig["ps"] + (1.0 - f) * sig["pl"]), k


def nadir(sim: Simulation, state: str) -> tuple[Arr, Arr]:
    """(nadir value, day of the nadir) of ``state`` per participant."""
    v = sim[state]
    j = np.argmin(v, axis=1)
    return v[np.arange(v.shape[0]), j], sim.times[j]


def time_below(sim: Simulation, state: str, level) -> Arr:
    """First day ``state`` falls below ``level`` (``inf`` if never)."""
    return first_crossing(sim.times, sim[state], level, direction="down")
