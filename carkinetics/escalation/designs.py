"""Design factory used by the command line and by paired (common random numbers) comparisons."""

from __future__ import annotations

from typing import Any

from carkinetics._validation import check_option
from carkinetics.escalation.base import Design
from carkinetics.exceptions import ModelSpecError

__all__ = ["make_design", "DESIGNS"]

DESIGNS = ("3+3", "boin", "crm", "exposure", "tite-boin", "boin-backfill")


def make_design(name: str, n_doses: int, target: float = 0.3, **options: Any) -> Design:
    """Build a design by name.

    Parameters
    ----------
    name : {"3+3", "boin", "crm", "exposure", "tite-boin", "boin-backfill"}
    n_doses : int
    target : float, default 0.3
    **options
        Design options (``cohort_size``, ``n_cohorts``, ``n_earlystop``, ``convention``,
        ``model``, ``skeleton``...); options a design does not use are ignored.

    Returns
    -------
    Design

    Raises
    ------
    ModelSpecError
        Unknown design, or ``exposure`` when ``carkinetics.escalation.exposure`` is missing.
    """
    import inspect

    name = check_option("design", name, DESIGNS, ModelSpecError)
    if name == "3+3":
        from carkinetics.escalation.threeplusthree import ThreePlusThree as cls
    elif name == "boin":
        from carkinetics.escalation.boin import BOIN as cls
    elif name == "tite-boin":
        from carkinetics.escalation.tite import TiteBOIN as cls
    elif name == "boin-backfill":
        from carkinetics.escalation.backfill import BackfillBOIN as cls
    elif name == "crm":
        from carkinetics.escalation.crm import CRM as cls
    else:
        try:
            from carkinetics.escalation import exposure
        except ImportError as exc:
            raise ModelSpecError("design 'exposure': module carkinetics.escalation.exposure is "
                                 f"not available in this installation ({exc}).") from exc
        if not hasattr(exposure, "make_design"):
            raise ModelSpecError("design 'exposure': carkinetics.escalation.exposure has no "
                                 "make_design(n_doses, target, **options) entry point.")
        return exposure.make_design(n_doses, target, **options)
    params = dict(inspect.signature(cls.__init__).parameters)
    if name in ("tite-boin", "boin-backfill"):  # BOIN options pass through **boin_options
        from carkinetics.escalation.boin import BOIN
        params.update(inspect.signature(BOIN.__init__).parameters)
        params.pop("titration", None)
    kw = {k: v for k, v in options.items() if k in params and v is not None}
    return cls(n_doses, target=target, **kw)
