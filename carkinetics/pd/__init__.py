"""CK->PD: from CAR-T exposure to B cells, plasma cells, immunoglobulins and autoantibodies.

One file per model (same :class:`~carkinetics.models.ParameterSpec` conventions as the
kinetic models):

* :class:`PiecewiseCAR` (closed-form CAR-T driver) and :class:`AntigenDrivenCAR`
  (expansion stimulated by the CD19+/BCMA+ targets it kills);
* :class:`BCellModel` (turnover, CAR-T killing, aplasia/reconstitution events),
  :class:`PlasmaCellModel` (short-lived and long-lived BCMA+),
  :class:`ImmunoglobulinModel` (IgG/IgA/IgM), :class:`AutoantibodyModel`,
  :class:`ComplementModel` (C3/C4), :class:`DiseaseActivityModel`.

Modules are composed into a :class:`CKPDSystem`, integrated for many participants at once
(:meth:`CKPDSystem.simulate`); :func:`get_pd_model` builds the named systems.
Fitting: :func:`fit_pd` (sequential or joint CK+PD, censored likelihood on every endpoint);
exposure-response: :mod:`carkinetics.pd.exposure`.
"""

from __future__ import annotations

from carkinetics._validation import check_option
from carkinetics.exceptions import ModelSpecError
from carkinetics.pd._base import (
    CKPDSystem,
    PDModule,
    Simulation,
    default_grid,
    first_crossing,
    integrate,
    solve_ivp_reference,
)
from carkinetics.pd.antigen import AntigenDrivenCAR
from carkinetics.pd.autoantibodies import AUTOANTIBODIES, AutoantibodyModel, seroconversion
from carkinetics.pd.bcell import BCellModel, bcell_events
from carkinetics.pd.cart import PiecewiseCAR
from carkinetics.pd.complement import ComplementModel
from carkinetics.pd.disease import SCORES, DiseaseActivityModel
from carkinetics.pd.immunoglobulins import ImmunoglobulinModel, ig_events
from carkinetics.pd.plasma import PlasmaCellModel

__all__ = [
    "AUTOANTIBODIES", "SCORES", "PD_MODELS",
    "AntigenDrivenCAR", "AutoantibodyModel", "BCellModel", "CKPDSystem", "ComplementModel",
    "DiseaseActivityModel", "ImmunoglobulinModel", "PDModule", "PiecewiseCAR",
    "PlasmaCellModel", "Simulation",
    "available_pd_models", "bcell_events", "default_grid", "first_crossing", "get_pd_model",
    "ig_events", "integrate", "seroconversion", "solve_ivp_reference",
    "fit_pd", "fit_pd_all", "PDFitResult", "demo_step",
]

#: Named systems: name -> description.
PD_MODELS: dict[str, str] = {
    "bcell": "piecewise CAR-T -> B cells (Emax killing)",
    "bcell_mass_action": "piecewise CAR-T -> B cells (mass-action killing)",
    "immunoglobulins": "piecewise CAR-T -> B cells -> plasma cells -> IgG/IgA/IgM",
    "autoantibodies": "piecewise CAR-T -> B cells -> plasma cells -> IgG/IgA/IgM, anti-dsDNA",
    "full": "piecewise CAR-T -> B cells -> plasma cells -> Ig, six autoantibodies, C3/C4 "
            "(driven by anti-dsDNA), SLEDAI-2K",
    "antigen": "antigen-driven CAR-T <-> B cells, plasma cells (CK and B cells jointly)",
    "antigen_full": "antigen-driven CAR-T <-> B cells, plasma cells -> Ig, anti-dsDNA, C3/C4",
}


def available_pd_models() -> list[str]:
    """Names accepted by :func:`get_pd_model`."""
    return list(PD_MODELS)


def get_pd_model(name: str, *, antibodies=None) -> CKPDSystem:
    """Build a named CK->PD system (see :data:`PD_MODELS`).

    Parameters
    ----------
    name : str
        One of :func:`available_pd_models`.
    antibodies : sequence of str, optional
        Autoantibodies of the ``autoantibodies``/``full``/``antigen_full`` systems
        (default: anti-dsDNA; ``full``: all six).

    Examples
    --------
    >>> get_pd_model("immunoglobulins").endpoints
    {'car_qpcr': 'car', 'cd19_b': 'b', 'igg': 'igg', 'iga': 'iga', 'igm': 'igm'}
    """
    check_option("name", name, PD_MODELS, exc=ModelSpecError)
    if name == "bcell":
        mods = [PiecewiseCAR(), BCellModel()]
    elif name == "bcell_mass_action":
        mods = [PiecewiseCAR(), BCellModel("mass_action")]
    elif name == "immunoglobulins":
        mods = [PiecewiseCAR(), BCellModel(), PlasmaCellModel(), ImmunoglobulinModel()]
    elif name == "autoantibodies":
        mods = [PiecewiseCAR(), BCellModel(), PlasmaCellModel(), ImmunoglobulinModel(),
                AutoantibodyModel(antibodies or ("anti_dsdna",))]
    elif name == "full":
        abs_ = tuple(antibodies or AUTOANTIBODIES)
        if "anti_dsdna" not in abs_:
            abs_ = ("anti_dsdna", *abs_)
        mods = [PiecewiseCAR(), BCellModel(), PlasmaCellModel(), ImmunoglobulinModel(),
                AutoantibodyModel(abs_), ComplementModel("anti_dsdna"),
                DiseaseActivityModel("sledai2k", "anti_dsdna_rel")]
    elif name == "antigen":
        mods = [AntigenDrivenCAR(), BCellModel(), PlasmaCellModel()]
    else:
        abs_ = tuple(antibodies or ("anti_dsdna",))
        mods = [AntigenDrivenCAR(), BCellModel(), PlasmaCellModel(), ImmunoglobulinModel(),
                AutoantibodyModel(abs_), ComplementModel(abs_[0])]
    system = CKPDSystem(mods)
    system.name = name
    return system


def __getattr__(name: str):
    if name in ("fit_pd", "fit_pd_all", "PDFitResult"):
        from carkinetics.pd import fit

        return getattr(fit, name)
    if name == "demo_step":
        from carkinetics.pd._demo import demo_step

        return demo_step
    raise AttributeError(f"module 'carkinetics.pd' has no attribute {name!r}")
