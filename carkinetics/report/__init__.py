"""The dose-escalation committee report (``carkinetics report``).

:func:`build_report` reads the outputs of the other commands (data table, ``fit``,
``popfit``, ``nca``, ``endpoints``, ``pd``, ``escalate``) and writes one self-contained HTML
file (figures embedded as data URIs, CSS inline, print styles with a page per section).
Sections whose inputs are absent are left out with a note.

The names are imported on first use, so that the command line can register
``carkinetics report`` without importing pandas and matplotlib.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_report", "render_report", "Section", "SECTION_IDS"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from carkinetics.report import build

        return getattr(build, name)
    raise AttributeError(f"module 'carkinetics.report' has no attribute {name!r}")
