"""Protocol endpoints: safety grading and tables, clinical scores, responders and serology.

CRS/ICANS grading, adverse-event tables, DLT flags, RA and SLE scores, HAQ-DI, change from
baseline, responder and serology tables.

Scoring functions take plain values and raise :class:`EndpointError` (a ``ValueError``)
for bad arguments; table functions take the validated long data table
(:func:`carkinetics.data.read_data`) and the adverse-event table (:func:`read_ae`).
Every rule states its source and confidence (R read in the source, S secondary, I
inferred) in its module's notes.
"""

from carkinetics.endpoints._checks import EndpointError
from carkinetics.endpoints.ae_tables import (
    ae_by_term,
    ae_summary,
    clopper_pearson,
    episodes_from_daily,
    incidence,
    max_grade,
    max_grade_table,
    syndrome_episodes,
    syndrome_summary,
)
from carkinetics.endpoints.baseline import change_from_baseline, change_summary
from carkinetics.endpoints.crs import (
    HYPOTENSION,
    HYPOXIA,
    OXYGEN_ROUTES,
    crs_grade,
    crs_grade_daily,
    grade_crs_days,
    hypotension_category,
    oxygen_category,
)
from carkinetics.endpoints.ctcae import CTCAE_LAB_TERMS, ctcae_lab_grade
from carkinetics.endpoints.dlt import (
    DEFAULT_DLT,
    DLT_STATUS,
    TYPICAL_DLT,
    DLTCriterion,
    DLTDefinition,
    dlt_flags,
)
from carkinetics.endpoints.haq import HAQ_CATEGORIES, HAQ_DEVICES, aids_by_category, haq_di
from carkinetics.endpoints.icans import (
    CONSCIOUSNESS,
    MOTOR,
    RAISED_ICP,
    SEIZURE,
    grade_icans_days,
    icans_grade,
    ice_score,
)
from carkinetics.endpoints.inputs import (
    AE_CATEGORIES,
    AE_COLUMNS,
    participants_from_data,
    read_ae,
    validate_ae,
    validate_crs_observations,
    validate_icans_observations,
)
from carkinetics.endpoints.ra import (
    ACR_COMPONENTS,
    acr_response,
    das28,
    das28_category,
    eular_response,
    improved,
)
from carkinetics.endpoints.report import endpoint_tables, write_endpoint_tables
from carkinetics.endpoints.responders import (
    ACR_ENDPOINTS,
    PHYSICIAN_GLOBAL_ENDPOINT,
    RESPONDER_MEASURES,
    das28_scores,
    responder_table,
    responders,
)
from carkinetics.endpoints.serology import (
    LOWER_LIMITS,
    POSITIVITY_THRESHOLDS,
    serology_flags,
    serology_summary,
)
from carkinetics.endpoints.sle import (
    BILAG2004_NUMERIC,
    BILAG_SYSTEMS,
    SLEDAI2K_WEIGHTS,
    bilag2004_score,
    check_pga,
    clinical_sledai2k,
    sledai2k,
    sri4_response,
)

__all__ = [
    "EndpointError",
    # CRS / ICANS
    "crs_grade", "crs_grade_daily", "hypotension_category", "oxygen_category",
    "grade_crs_days", "HYPOTENSION", "HYPOXIA", "OXYGEN_ROUTES",
    "icans_grade", "ice_score", "grade_icans_days", "CONSCIOUSNESS", "SEIZURE", "MOTOR",
    "RAISED_ICP",
    "ctcae_lab_grade", "CTCAE_LAB_TERMS",
    # inputs
    "AE_COLUMNS", "AE_CATEGORIES", "validate_ae", "read_ae", "validate_crs_observations",
    "validate_icans_observations", "participants_from_data",
    # AE tables and DLT
    "clopper_pearson", "incidence", "ae_summary", "ae_by_term", "max_grade",
    "max_grade_table", "syndrome_episodes", "episodes_from_daily", "syndrome_summary",
    "DLTCriterion", "DLTDefinition", "DEFAULT_DLT", "TYPICAL_DLT", "DLT_STATUS", "dlt_flags",
    # efficacy
    "das28", "das28_category", "eular_response", "improved", "acr_response", "ACR_COMPONENTS",
    "sledai2k", "clinical_sledai2k", "bilag2004_score", "check_pga", "sri4_response",
    "SLEDAI2K_WEIGHTS", "BILAG_SYSTEMS", "BILAG2004_NUMERIC",
    "haq_di", "aids_by_category", "HAQ_CATEGORIES", "HAQ_DEVICES",
    "change_from_baseline", "change_summary", "das28_scores", "responders", "responder_table",
    "RESPONDER_MEASURES", "ACR_ENDPOINTS", "PHYSICIAN_GLOBAL_ENDPOINT",
    "serology_flags", "serology_summary", "POSITIVITY_THRESHOLDS", "LOWER_LIMITS",
    # report
    "endpoint_tables", "write_endpoint_tables",
]
