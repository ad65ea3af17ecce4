"""Individual CAR-T kinetic fits: per participant, BLQ-aware (M1-M7), on lmfit.

* :func:`fit_individual` fits one participant (one endpoint, or qPCR and flow jointly);
* :func:`fit_individuals` fits every participant of a table, in parallel processes;
* :func:`compare_models` / :func:`model_comparison` rank models per participant by AIC,
  BIC and Akaike weights;
* :func:`fit_focei` fits a :class:`PopulationModel` by FOCE-I (population engine);
* :func:`bootstrap_focei` / :func:`bootstrap_individuals` (:mod:`.bootstrap`): case
  bootstrap by participant; :func:`simulation_estimation` (:mod:`.simest`):
  simulation-estimation studies; both batch jobs on :func:`carkinetics.parallel.map_units`.

Results are frozen dataclasses of pandas objects (:class:`FitResult`,
:class:`FitResults`); see :mod:`carkinetics.fitting.individual` for how a fit runs.
"""

from __future__ import annotations

from carkinetics.fitting.batch import EACH, compare_models, fit_individuals, model_comparison
from carkinetics.fitting.bootstrap import (
    BootstrapResult,
    bootstrap_focei,
    bootstrap_individuals,
)
from carkinetics.fitting.individual import FLAGS, fit_individual
from carkinetics.fitting.outputs import write_fit_outputs
from carkinetics.fitting.population.focei import (
    FOCEIResult,
    PopulationModel,
    fit_focei,
    focei_objective,
)
from carkinetics.fitting.results import PARAMETER_COLUMNS, FitFailure, FitResult, FitResults
from carkinetics.fitting.simest import (
    SimEstResult,
    simulation_estimation,
    simulation_estimation_individuals,
)

__all__ = [
    "EACH",
    "FLAGS",
    "PARAMETER_COLUMNS",
    "FitFailure",
    "FitResult",
    "FitResults",
    "compare_models",
    "fit_individual",
    "fit_individuals",
    "model_comparison",
    "write_fit_outputs",
    "FOCEIResult",
    "PopulationModel",
    "fit_focei",
    "focei_objective",
    "BootstrapResult",
    "bootstrap_focei",
    "bootstrap_individuals",
    "SimEstResult",
    "simulation_estimation",
    "simulation_estimation_individuals",
]
