"""CAR-T driver of the PD system: the closed-form Stein 2019 ``piecewise`` level.

The CAR-T level ``car`` (copies/ug) at day ``t`` is the piecewise model's closed form
(:class:`carkinetics.models.piecewise.PiecewiseModel`) with the participant's parameters
*at its dose* (e.g. ``params_at_dose`` of the synthetic trial's truth, or an individual
fit's estimates, which are already at the participant's dose). It has no state: the PD
modules read it as the ``car`` signal. Before the infusion the level is 0.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from carkinetics.models import get_model
from carkinetics.pd._base import Arr, PDModule

__all__ = ["PiecewiseCAR"]


class PiecewiseCAR(PDModule):
    """CAR-T level from the ``piecewise`` closed form (parameters at the dose).

    Examples
    --------
    >>> m = PiecewiseCAR()
    >>> m.param_names
    ('foldx', 'tmax', 'cmax', 'alpha', 'fb', 'beta')
    """

    name = "piecewise"
    description = "Stein 2019 piecewise CAR-T level (closed form), parameters at the dose"
    states = ()
    endpoints = {"car_qpcr": "car"}
    provides = ("car",)

    def __init__(self) -> None:
        self._model = get_model("piecewise")
        self.params = self._model.params

    def initial(self, p: Mapping[str, Arr]) -> dict[str, Arr]:
        """No states."""
        return {}

    def signals(self, t, y, p, sig) -> None:
        """The level ``car`` at day ``t``."""
        with np.errstate(under="ignore", over="ignore"):
            sig["car"] = np.exp(self._model.log_predict(np.asarray(float(t)), p))

    def rates(self, t, y, p, sig):
        """``(u, a)`` of each state: ``dx/dt = u - a x``."""
        return {}

    def level_grid(self, times, p: Mapping[str, Arr]) -> Arr:
        """Level at every day of ``times`` for every participant, shape (n, len(times))."""
        q = {k: np.asarray(v, dtype=float)[:, None] for k, v in p.items()
             if k in self.param_names}
        with np.errstate(under="ignore", over="ignore"):
            return np.exp(self._model.log_predict(np.asarray(times, dtype=float)[None, :], q))

    def breakpoints(self, p: Mapping[str, Arr]) -> list[float]:
        """The kink of the closed form (``tmax``) for one participant."""
        return [float(np.asarray(p["tmax"]).ravel()[0])]
