"""Non-compartmental analysis (NCA) with CAR-T conventions.

:func:`nca` computes, per (id, endpoint), the standard parameters with CDISC PP test codes
(CMAX, TMAX, CLST, TLST, AUCLST, AUCALL, AUMCLST, LAMZ, LAMZHL, LAMZNPT, LAMZLL, LAMZUL,
R2, R2ADJ, CLSTP, AUCIFO, AUCIFP, AUCPEO, AUCPEP, AUMCIFO, AUCINT over any interval) and
the CAR-T ones (FOLDX, KEXP, TDOUB, KEARLY, HLEARLY, TFBLQ; AUC0-28d and AUC0-84d as AUCINT),
vectorised across participants. The result holds a long table (PKNCA-like, with the
reason for every value not computed) and a wide view (:meth:`NCAResult.to_wide`).
:func:`summarize_nca` and :func:`dose_proportionality` summarise by dose level;
:func:`compare_with_model` puts model-derived exposures beside the NCA ones.

Conventions: :mod:`carkinetics.nca.core` (curve, Cmax, AUCs), :mod:`carkinetics.nca.blq`
(BLQ rules; CAR-T defaults first -> 0, middle -> dropped, last -> 0),
:mod:`carkinetics.nca.lambda_z` (best fit), :mod:`carkinetics.nca.auc` (methods),
:mod:`carkinetics.nca.cart` (CAR-T parameters).

Examples
--------
>>> import pandas as pd
>>> from carkinetics.nca import nca
>>> d = pd.DataFrame({"id": "P1", "time": [1, 4, 7, 10, 14, 21, 28, 56, 84.0],
...                   "dv": [50, 400, 3000, 9000, 6000, 2500, 1100, 400, 150.0]})
>>> w = nca(d).to_wide()
>>> float(w["CMAX"].iloc[0]), float(w["TMAX"].iloc[0]), int(w["LAMZNPT"].iloc[0])
(9000.0, 10.0, 3)
"""

from __future__ import annotations

from carkinetics.nca._table import CART_PARAMETERS, PARAMETERS, interval_name, to_wide
from carkinetics.nca.auc import AUC_METHODS, auc_segments
from carkinetics.nca.blq import BLQ_ACTIONS, BLQRule
from carkinetics.nca.compare import compare_with_model
from carkinetics.nca.core import CART_INTERVALS, DOSING, NCAResult, nca
from carkinetics.nca.summary import dose_proportionality, summarize_nca

__all__ = [
    "nca",
    "NCAResult",
    "BLQRule",
    "BLQ_ACTIONS",
    "AUC_METHODS",
    "DOSING",
    "CART_INTERVALS",
    "PARAMETERS",
    "CART_PARAMETERS",
    "to_wide",
    "interval_name",
    "auc_segments",
    "summarize_nca",
    "dose_proportionality",
    "compare_with_model",
]
