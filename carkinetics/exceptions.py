"""Exceptions and warnings raised by carkinetics.

Every error subclasses a builtin (``ValueError``), so callers that already catch
``ValueError`` keep working. Messages follow one template: they name the argument (or the
file, row and column), the bad value, what was expected and, where one exists, the nearest
valid option.
"""

from __future__ import annotations

__all__ = [
    "CarkineticsError",
    "DataError",
    "ModelSpecError",
    "CarkineticsWarning",
    "ConvergenceWarning",
    "CensoringWarning",
    "IdentifiabilityWarning",
    "DataWarning",
]


class CarkineticsError(Exception):
    """Base class of every carkinetics error."""


class DataError(CarkineticsError, ValueError):
    """Bad input data: the message lists every problem found, each with row and column.

    Parameters
    ----------
    problems : list of str
        One human-readable line per problem.
    source : str, optional
        File name (or other description) of the data that failed.
    """

    def __init__(self, problems: list[str] | str, source: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [problems]
        self.problems: list[str] = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} found{where}:"
        super().__init__("\n".join([head, *("  - " + p for p in self.problems)]))


class ModelSpecError(CarkineticsError, ValueError):
    """A model, parameter specification or parameter value is invalid."""


class CarkineticsWarning(UserWarning):
    """Base class of every carkinetics warning."""


class ConvergenceWarning(CarkineticsWarning):
    """An optimiser or sampler did not converge."""


class CensoringWarning(CarkineticsWarning):
    """Censored data are handled in a way that may bias results (e.g. M1 or M5-M7)."""


class IdentifiabilityWarning(CarkineticsWarning):
    """The data cannot separate some parameters (e.g. FB and beta on short follow-up)."""


class DataWarning(CarkineticsWarning):
    """Data are usable but unusual (e.g. a quantified sample before infusion)."""
