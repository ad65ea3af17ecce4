"""Rules for below-LLOQ (BLQ) samples in NCA.

A BLQ sample (``cens == 1``, stored as ``dv == lloq``) is classified by where it lies in its
profile, and each class gets one action:

* by position (default): ``first`` (before the first quantified sample), ``middle``
  (between the first and the last quantified sample) and ``last`` (after the last one);
* or relative to Tmax: ``before_tmax`` and ``after_tmax``.

Actions: ``"drop"`` (remove the sample), ``"zero"`` (use 0), ``"lloq/2"`` (use LLOQ/2) and
``"lloq"`` (keep it at the LLOQ). A profile with no quantified sample has only ``first``
(or ``before_tmax``) samples.

CAR-T defaults (``BLQRule()``): ``first="zero"``, ``middle="drop"``, ``last="zero"``.

* Before the first quantified sample -> 0. Before expansion the transgene is not yet
  measurable in blood; 0 is the single-dose convention (and C(0) = 0 is assumed at the
  infusion when time 0 was not sampled), and LLOQ/2 or LLOQ would add an area that the
  data do not show and that grows with the lag, not with exposure.
* Between quantified samples -> dropped. Intermittent BLQ results near the LLOQ in the
  persistence phase are assay noise around a level that is still there; a zero would cut
  a notch into the AUC, so the curve is interpolated across them.
* After the last quantified sample -> 0. The first BLQ after Tlast is an observation that
  the level has fallen below the LLOQ; it closes the profile with a linear segment to 0.
  This keeps interval AUCs (AUC0-28d, AUC0-84d) defined for low expanders whose level is
  lost before day 28: dropping the sample would either leave those AUCs undefined (and
  dose-level summaries biased towards high expanders) or extrapolate with a terminal
  lambda_z that the BLQ result contradicts. AUClast, Clast, Tlast, lambda_z and AUCinf do
  not depend on this choice.

These defaults equal PKNCA's defaults for ordinary PK (first and last kept as 0, middle
dropped), so results are comparable. BLQ samples never enter Cmax, Tmax, Clast, Tlast,
lambda_z or the doubling time, whatever the rule: substituted values are not measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from carkinetics._validation import check_option

__all__ = ["BLQRule", "BLQ_ACTIONS"]

BLQ_ACTIONS: tuple[str, ...] = ("drop", "zero", "lloq/2", "lloq")
_DEFAULTS = {"first": "zero", "middle": "drop", "last": "zero"}
_CODE = {"drop": 0, "zero": 1, "lloq/2": 2, "lloq": 3}


@dataclass(frozen=True)
class BLQRule:
    """What to do with BLQ samples, by position in the profile or relative to Tmax.

    Parameters
    ----------
    first, middle, last : {"drop", "zero", "lloq/2", "lloq"}, optional
        Action before the first quantified sample, between quantified samples and after
        the last quantified sample. Unset ones take the CAR-T defaults ``"zero"``,
        ``"drop"``, ``"zero"`` (see the module notes).
    before_tmax, after_tmax : {"drop", "zero", "lloq/2", "lloq"}, optional
        Give both (and none of ``first``/``middle``/``last``) to classify by Tmax instead.

    Examples
    --------
    >>> BLQRule()
    BLQRule(first='zero', middle='drop', last='zero', before_tmax=None, after_tmax=None)
    >>> BLQRule(last="lloq/2").last
    'lloq/2'
    >>> BLQRule(before_tmax="zero", after_tmax="drop").relative_to_tmax
    True
    """

    first: str | None = None
    middle: str | None = None
    last: str | None = None
    before_tmax: str | None = None
    after_tmax: str | None = None

    def __post_init__(self) -> None:
        by_pos = {k: getattr(self, k) for k in _DEFAULTS}
        by_tmax = {"before_tmax": self.before_tmax, "after_tmax": self.after_tmax}
        if any(v is not None for v in by_tmax.values()):
            if any(v is not None for v in by_pos.values()):
                raise ValueError("Invalid BLQRule: give either first/middle/last or "
                                 "before_tmax/after_tmax, not both.")
            if None in by_tmax.values():
                raise ValueError("Invalid BLQRule: before_tmax and after_tmax go together; "
                                 "give both.")
            for k, v in by_tmax.items():
                check_option(f"BLQRule {k}", v, BLQ_ACTIONS)
            return
        for k, v in by_pos.items():
            if v is None:
                object.__setattr__(self, k, _DEFAULTS[k])
            else:
                check_option(f"BLQRule {k}", v, BLQ_ACTIONS)

    @property
    def relative_to_tmax(self) -> bool:
        """Whether BLQ samples are classified relative to Tmax."""
        return self.before_tmax is not None

    def describe(self) -> str:
        """One-line text of the rule, for reports and output notes.

        Returns
        -------
        str
            e.g. ``"first=zero, middle=drop, last=zero"``.
        """
        if self.relative_to_tmax:
            return f"before_tmax={self.before_tmax}, after_tmax={self.after_tmax}"
        return f"first={self.first}, middle={self.middle}, last={self.last}"


def apply_blq(rule: BLQRule, g: NDArray, t: NDArray, c: NDArray, blq: NDArray,
              t_firstq: NDArray, t_lastq: NDArray, tmax: NDArray) -> tuple[NDArray, NDArray]:
    """Return ``(keep, value)`` for each sample after applying ``rule`` (private helper).

    ``t_firstq``, ``t_lastq`` and ``tmax`` are per group (NaN when the group has no
    quantified sample); ``c`` holds the LLOQ on BLQ rows.
    """
    if rule.relative_to_tmax:
        after = blq & (t > tmax[g])  # NaN tmax -> False: all "before"
        actions = np.where(after, _CODE[rule.after_tmax], _CODE[rule.before_tmax])
    else:
        fq, lq = t_firstq[g], t_lastq[g]
        first = ~(t >= fq)  # also True when the group has no quantified sample
        last = t > lq
        actions = np.select([first, last], [_CODE[rule.first], _CODE[rule.last]],
                            _CODE[rule.middle])
    actions = np.where(blq, actions, -1)
    keep = actions != 0
    value = np.select([actions == 1, actions == 2], [0.0, c / 2.0], c)
    return keep, value
