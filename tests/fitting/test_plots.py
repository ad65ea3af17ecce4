"""Diagnostic plots draw from the result objects (smoke tests with counts of artists)."""

import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from carkinetics.fitting import fit_individuals
from carkinetics.plots import (
    plot_individual_fits,
    plot_observed_vs_predicted,
    plot_parameters_by_dose,
    plot_residuals_vs_prediction,
    plot_residuals_vs_time,
)

from .conftest import participant


@pytest.fixture(scope="module")
def results(trial):
    import pandas as pd

    bad = participant([1, 7, 28], pid="BAD", lloq=1e9)
    data = pd.concat([trial[trial["id"].isin(["P01", "P05", "P10", "P16"])], bad])
    return fit_individuals(data, endpoint="joint", progress=False, n_starts=3)


def test_individual_fit_panels(results):
    fig = plot_individual_fits(results)
    assert isinstance(fig, Figure)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 5  # four fits and the failure
    ax = visible[0]
    assert ax.get_yscale() == "log"
    # two assays: filled + open markers + curve each
    assert len(ax.lines) >= 4
    assert any(t.get_text().startswith("BAD: failed") for t in visible[4].texts)
    one = plot_individual_fits(results.fits[0])
    assert len([a for a in one.axes if a.get_visible()]) == 1


def test_scatter_diagnostics(results):
    n = sum(len(f.predictions) for f in results)
    for fn in (plot_observed_vs_predicted, plot_residuals_vs_time, plot_residuals_vs_prediction):
        ax = fn(results)
        assert isinstance(ax, Axes)
        pts = sum(len(line.get_xdata()) for line in ax.lines if line.get_linestyle() == "None")
        assert pts == n
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_residuals_vs_time(results.fits[0], ax=ax) is ax


def test_parameters_by_dose(results):
    fig = plot_parameters_by_dose(results)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 6
    assert visible[0].get_title().startswith("foldx")
    fig = plot_parameters_by_dose(results, params=["log_scale_car_flow"])
    assert len([a for a in fig.axes if a.get_visible()]) == 1


def test_wrong_input():
    with pytest.raises(TypeError, match="FitResult"):
        plot_observed_vs_predicted("nope")
