"""Dose-escalation designs (3+3, BOIN, CRM) and their operating characteristics.

See :mod:`carkinetics.escalation.base` for the shared protocol (trial state, decision, design,
virtual participant pools with common random numbers).
"""

from carkinetics.escalation.base import (
    Decision,
    Design,
    OCResult,
    ParticipantPool,
    TrialState,
    draw_pool,
    trial_seed,
)

__all__ = ["Decision", "Design", "OCResult", "ParticipantPool", "TrialState", "draw_pool",
           "trial_seed"]
