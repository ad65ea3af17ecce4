"""Population (mixed-effects) fits of CAR-T kinetics.

* :mod:`~carkinetics.fitting.population.spec` -- the model specification shared by the
  FOCE-I and Bayesian estimators (:class:`PopulationSpec`, :class:`Covariate`);
* :mod:`~carkinetics.fitting.population.focei` -- the FOCE-I engine (:func:`fit_focei`,
  :class:`PopulationModel`, :class:`FOCEIResult`).
"""

from __future__ import annotations

from carkinetics.fitting.population.focei import (
    FOCEIResult,
    PopulationModel,
    fit_focei,
    focei_objective,
)
from carkinetics.fitting.population.spec import (
    JOINT,
    Covariate,
    PopulationDesign,
    PopulationSpec,
    dose_covariate,
)

__all__ = [
    "JOINT",
    "Covariate",
    "FOCEIResult",
    "PopulationDesign",
    "PopulationModel",
    "PopulationSpec",
    "dose_covariate",
    "fit_focei",
    "focei_objective",
]
