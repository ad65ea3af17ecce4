"""Matplotlib figures.

Each function takes an Axes (or returns a Figure) and draws from tables computed elsewhere.
"""

from carkinetics.plots.ck import plot_ck_by_dose, plot_ck_profiles
from carkinetics.plots.endpoints import plot_responder_rates, responder_figure
from carkinetics.plots.fits import (
    plot_individual_fits,
    plot_observed_vs_predicted,
    plot_parameters_by_dose,
    plot_residuals_vs_prediction,
    plot_residuals_vs_time,
)
from carkinetics.plots.nca import plot_exposure_vs_dose, plot_nca_by_dose

__all__ = [
    "plot_ck_by_dose",
    "plot_ck_profiles",
    "plot_individual_fits",
    "plot_observed_vs_predicted",
    "plot_parameters_by_dose",
    "plot_residuals_vs_prediction",
    "plot_residuals_vs_time",
    "plot_nca_by_dose",
    "plot_exposure_vs_dose",
    "plot_responder_rates",
    "responder_figure",
]
