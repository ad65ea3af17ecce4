"""The long-format data table: schema, validation, units, visit schedule, readers and writers.

See :mod:`carkinetics.data.schema` for the columns, :func:`validate` for the checks and
:mod:`carkinetics.data.io` for files (CSV, Parquet, NONMEM-style).
"""

from __future__ import annotations

from carkinetics.data.io import (
    DEFAULT_DVID_MAP,
    NONMEM_COLUMNS,
    from_nonmem,
    read_data,
    read_nonmem,
    to_nonmem,
    write_data,
    write_nonmem,
)
from carkinetics.data.schema import (
    CENS_ALQ,
    CENS_BLQ,
    CENS_CODES,
    CENS_QUANTIFIED,
    CK_ENDPOINTS,
    COLUMN_ORDER,
    ENDPOINTS,
    NUMERIC,
    REQUIRED,
    EndpointInfo,
)
from carkinetics.data.units import (
    UNITS,
    UnitError,
    convert,
    dose_per_kg_to_total,
    to_canonical,
    total_to_dose_per_kg,
)
from carkinetics.data.validate import validate, validate_file
from carkinetics.data.visits import (
    ALL_VISITS,
    DAYS_PER_MONTH,
    DENSE_VISITS,
    PROTOCOL_VISITS,
    assign_visits,
    visit_day,
    visit_label,
)

__all__ = [
    "validate",
    "validate_file",
    "read_data",
    "write_data",
    "read_nonmem",
    "write_nonmem",
    "from_nonmem",
    "to_nonmem",
    "NONMEM_COLUMNS",
    "DEFAULT_DVID_MAP",
    "convert",
    "to_canonical",
    "dose_per_kg_to_total",
    "total_to_dose_per_kg",
    "UNITS",
    "UnitError",
    "visit_day",
    "visit_label",
    "assign_visits",
    "PROTOCOL_VISITS",
    "DENSE_VISITS",
    "ALL_VISITS",
    "DAYS_PER_MONTH",
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
