"""Matplotlib figures.

Each function takes an Axes (or returns a Figure) and draws from tables computed elsewhere.
"""

from carkinetics.plots.ck import plot_ck_by_dose, plot_ck_profiles

__all__ = ["plot_ck_by_dose", "plot_ck_profiles"]
