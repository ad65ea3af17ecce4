"""Atomic file output: write to a temporary name in the target folder, then rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "save_figure", "write_table"]

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike[str], writer: Callable[[str], object]) -> Path:
    """Call ``writer(tmp_path)`` and move the result to ``path`` in one rename.

    An interrupted run therefore never leaves a half-written ``path``; the temporary file
    is removed on failure.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}",
                               dir=path.parent)
    os.close(fd)
    try:
        writer(tmp)
        with open(tmp, "rb+") as f:  # reach the disk before the rename makes it visible
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_figure(fig, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Save a matplotlib figure atomically."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=Path(path).suffix[1:]))


def write_table(df, path: str | os.PathLike[str]) -> Path:
    """Write a DataFrame as CSV or Parquet (by suffix) atomically, without the index."""
    if Path(path).suffix in (".parquet", ".pq"):
        return atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))
    return atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))
