"""Virtual participants and virtual trials."""

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
           "simulate_trial", "truth_path_for"]
