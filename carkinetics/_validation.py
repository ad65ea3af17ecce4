"""Argument checks sharing one message template (argument, value, expectation, hint)."""

from __future__ import annotations

import difflib
from collections.abc import Collection

__all__ = ["check_option", "closest"]


def closest(value: object, options: Collection[str]) -> str:
    """Return a " Did you mean 'x'?" hint for ``value`` among ``options`` (or "")."""
    near = difflib.get_close_matches(str(value), [str(o) for o in options], n=1, cutoff=0.5)
    return f" Did you mean {near[0]!r}?" if near else ""


def check_option(name: str, value: object, options: Collection[str], exc: type = ValueError):
    """Raise ``exc`` unless ``value`` is one of ``options``.

    Parameters
    ----------
    name : str
        Argument name, used in the message.
    value : object
        The value given.
    options : collection of str
        Accepted values.
    exc : type, default ValueError
        Exception class to raise.

    Returns
    -------
    object
        ``value`` unchanged when it is valid.
    """
    if value not in options:
        raise exc(
            f"Invalid {name}={value!r}; expected one of {sorted(map(str, options))}."
            + closest(value, options)
        )
    return value
