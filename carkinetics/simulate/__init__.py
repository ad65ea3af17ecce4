"""Virtual participants and virtual trials (kinetics, adverse events, clinical scores)."""

from carkinetics.simulate.safety import (
    simulate_adverse_events,
    simulate_crs_observations,
    simulate_icans_observations,
)
from carkinetics.simulate.scores import simulate_clinical_scores
from carkinetics.simulate.trial import (
    DEFAULT_SEED,
    CKPopulation,
    SimulatedTrial,
    TrialDesign,
    blq_fraction,
    simulate_trial,
    truth_path_for,
)

__all__ = ["DEFAULT_SEED", "CKPopulation", "SimulatedTrial", "TrialDesign", "blq_fraction",
           "simulate_trial", "truth_path_for", "simulate_adverse_events",
           "simulate_crs_observations", "simulate_icans_observations",
           "simulate_clinical_scores"]
