"""Array namespaces so that one closed form serves numpy and pytensor.

A model's ``log_predict(t, params, xp=...)`` uses only the functions listed in
:class:`Namespace`. ``NUMPY`` is the default; :func:`pytensor_namespace` builds the
pytensor equivalent lazily (pytensor is imported only when asked for).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Namespace", "NUMPY", "pytensor_namespace"]


@dataclass(frozen=True)
class Namespace:
    """The handful of array functions a closed-form model may use."""

    exp: Callable[..., Any]
    log: Callable[..., Any]
    log1p: Callable[..., Any]
    expm1: Callable[..., Any]
    where: Callable[..., Any]
    logaddexp: Callable[..., Any]
    maximum: Callable[..., Any]
    minimum: Callable[..., Any]
    is_numpy: bool = False


NUMPY = Namespace(
    exp=np.exp,
    log=np.log,
    log1p=np.log1p,
    expm1=np.expm1,
    where=np.where,
    logaddexp=np.logaddexp,
    maximum=np.maximum,
    minimum=np.minimum,
    is_numpy=True,
)


def pytensor_namespace() -> Namespace:
    """Return the pytensor namespace (``switch`` stands in for ``where``).

    ``logaddexp`` is not ``pt.logaddexp``: that is the naive ``log(exp(a) + exp(b))``,
    which underflows to ``-inf`` (and gives ``nan`` gradients) once both arguments are
    below about -745 unless pytensor's stabilising rewrites run (they do not in
    ``FAST_COMPILE`` and do not fix the gradient). The replacement adds a softplus of a
    non-positive argument to the larger input; its gradient is finite everywhere and
    splits evenly at ties.
    """
    import pytensor.tensor as pt

    def logaddexp(a, b):
        d = a - b
        return pt.switch(d > 0, a + pt.softplus(-d), b + pt.softplus(d))

    return Namespace(
        exp=pt.exp,
        log=pt.log,
        log1p=pt.log1p,
        expm1=pt.expm1,
        where=pt.switch,
        logaddexp=logaddexp,
        maximum=pt.maximum,
        minimum=pt.minimum,
        is_numpy=False,
    )
