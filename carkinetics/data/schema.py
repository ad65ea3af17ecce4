"""The long-format data table: columns, censoring codes, endpoint and unit vocabulary.

One row per observation. Required columns: ``id``, ``time`` (days since the CAR-T
infusion; baseline visits are negative) and ``dv``. A censored row keeps the limit it is
censored at in ``dv`` (``dv == lloq`` with ``cens == 1``; ``dv == uloq`` with
``cens == -1``); it is never stored as 0 or LLOQ/2.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "REQUIRED",
    "NUMERIC",
    "CENS_QUANTIFIED",
    "CENS_BLQ",
    "CENS_ALQ",
    "CENS_CODES",
    "EndpointInfo",
    "ENDPOINTS",
    "CK_ENDPOINTS",
    "COLUMN_ORDER",
]

REQUIRED: tuple[str, ...] = ("id", "time", "dv")
#: Columns that must be numeric (and finite where present, except uloq/limit may be inf/NaN).
NUMERIC: tuple[str, ...] = ("time", "dv", "lloq", "uloq", "cens", "dose", "weight", "limit",
                            "delivered_dose")
CENS_QUANTIFIED, CENS_BLQ, CENS_ALQ = 0, 1, -1
CENS_CODES = (CENS_QUANTIFIED, CENS_BLQ, CENS_ALQ)

#: Preferred column order when writing; other columns follow in their input order.
COLUMN_ORDER: tuple[str, ...] = ("id", "time", "visit", "endpoint", "dv", "unit", "lloq", "uloq",
                                 "cens", "limit", "dose", "dose_level", "delivered_dose",
                                 "weight", "disease")


@dataclass(frozen=True)
class EndpointInfo:
    """What one endpoint measures and in which units.

    Attributes
    ----------
    name : str
        snake_case endpoint code.
    description : str
        What is measured.
    unit : str
        Canonical unit (the one models and tables use).
    units : tuple of str
        Every unit accepted on input; each converts exactly to ``unit``
        (see :mod:`carkinetics.data.units`).
    kinetic : bool
        Whether it is a CAR-T cellular-kinetic endpoint (rows need a dose).
    nonnegative : bool
        Whether negative values are impossible.
    """

    name: str
    description: str
    unit: str
    units: tuple[str, ...]
    kinetic: bool = False
    nonnegative: bool = True


def _e(name, description, unit, units=None, kinetic=False, nonnegative=True):
    return EndpointInfo(name, description, unit, tuple(units or (unit,)), kinetic, nonnegative)


_G_L = ("g/L", "mg/dL", "mg/L")
_LIST = [
    _e("car_qpcr", "CAR transgene by qPCR", "copies/ug", ("copies/ug", "copies/ug gDNA"), True),
    _e("car_flow", "CAR+ cells by flow cytometry", "cells/uL",
       ("cells/uL", "cells/mm3", "cells/L", "10^9/L"), True),
    _e("car_flow_pct", "CAR+ cells as % of CD3+ T cells", "%", ("%",), True),
    _e("cd19_b", "CD19+ B cells", "cells/uL", ("cells/uL", "cells/mm3", "cells/L", "10^9/L")),
    _e("igg", "immunoglobulin G", "g/L", _G_L),
    _e("iga", "immunoglobulin A", "g/L", _G_L),
    _e("igm", "immunoglobulin M", "g/L", _G_L),
    _e("anti_dsdna", "anti-double-stranded DNA antibodies", "IU/mL"),
    _e("ana", "antinuclear antibody titre (reciprocal)", "titre"),
    _e("anti_ro_ssa", "anti-Ro/SSA antibodies", "U/mL"),
    _e("rf", "rheumatoid factor", "IU/mL"),
    _e("anti_topo1", "anti-topoisomerase I (Scl-70) antibodies", "U/mL"),
    _e("anti_rnap3", "anti-RNA polymerase III antibodies", "U/mL"),
    _e("c3", "complement C3", "g/L", _G_L),
    _e("c4", "complement C4", "g/L", _G_L),
    _e("esr", "erythrocyte sedimentation rate", "mm/h"),
    _e("crp", "C-reactive protein", "mg/L", ("mg/L", "mg/dL")),
    _e("sledai2k", "SLEDAI-2K score", "score"),
    _e("pga", "physician global assessment (0-3)", "score"),
    _e("bilag2004", "BILAG-2004 numeric score", "score"),
    _e("haq_di", "HAQ disability index (0-3)", "score"),
    _e("sjc28", "swollen joint count (28 joints)", "count"),
    _e("tjc28", "tender joint count (28 joints)", "count"),
    _e("vas_pain", "patient pain visual analogue scale", "mm", ("mm", "cm")),
    _e("vas_global", "patient global visual analogue scale", "mm", ("mm", "cm")),
    _e("vas_physician", "physician global visual analogue scale", "mm", ("mm", "cm")),
]
ENDPOINTS: dict[str, EndpointInfo] = {e.name: e for e in _LIST}
CK_ENDPOINTS: tuple[str, ...] = tuple(e.name for e in _LIST if e.kinetic)
