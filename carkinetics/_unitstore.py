"""Resume store of a batch job: one signed file per finished chunk (internal).

A store is a directory holding ``manifest.json`` (the job: function, chunk size, number of
units, fingerprint; and a log of the runs) and one ``chunk-<start>-<stop>.bin`` per finished
chunk, each written atomically (:mod:`carkinetics._atomic`) as soon as the chunk finishes.

Format and safety. Chunk results are arbitrary Python objects (fit results hold model and
problem objects), so the payload is a pickle. Nothing read from a store is unpickled unless
its HMAC-SHA256 signature verifies with this user's secret key (``store.key``, created with
mode 0600 on first use in ``$XDG_CONFIG_HOME/carkinetics`` or ``~/.config/carkinetics``, or the
file named by ``$CARKINETICS_STORE_KEY_FILE``): a store written by somebody else, or edited,
is refused, never loaded. The manifest is signed too, and a resumed job must match it
(function, chunk size, number of units, fingerprint); each chunk file also records the
SHA-256 of its units (when the job has no fingerprint), checked against the units of the
rerun.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickle
import secrets
import struct
from pathlib import Path
from typing import Any

from carkinetics._atomic import atomic_write
from carkinetics.exceptions import ModelSpecError

__all__ = ["UnitStore", "StoreMismatchError", "store_key_path", "unit_hash"]

_MAGIC = b"CKSTORE1"
_VERSION = 1


class StoreMismatchError(ModelSpecError):
    """A resume store belongs to another job, another user, or was modified."""


def store_key_path() -> Path:
    """Path of this user's store signing key (see the module docstring)."""
    env = os.environ.get("CARKINETICS_STORE_KEY_FILE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "carkinetics" / "store.key"


def _key() -> bytes:
    path = store_key_path()
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # created meanwhile by another process
            return bytes.fromhex(path.read_text().strip())
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        return bytes.fromhex(path.read_text().strip())


def _sign(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def unit_hash(units: list[Any]) -> str:
    """SHA-256 of the pickled units of a chunk (their identity for resuming)."""
    return hashlib.sha256(pickle.dumps(units, protocol=5)).hexdigest()


class UnitStore:
    """The chunk files and manifest of one job in directory ``path``.

    Parameters
    ----------
    path : path-like
        Store directory (created).
    job : dict
        JSON-able identity of the job: ``fn``, ``chunksize``, ``n`` (or None), ``fingerprint``
        (or None).
    resume : bool
        Reuse the finished chunks of a matching store; False clears the store first.

    Raises
    ------
    StoreMismatchError
        ``resume`` and the directory holds a store of another job or not signed by this user.
    """

    def __init__(self, path: str | os.PathLike[str], job: dict[str, Any], *,
                 resume: bool) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._key = _key()
        man = self.path / "manifest.json"
        self.runs: list[dict[str, Any]] = []
        if resume and man.exists():
            stored = self._read_manifest(man)
            if stored.get("chunksize") != job.get("chunksize") and job.get("adopt_chunksize"):
                job = dict(job, chunksize=stored.get("chunksize"))
            for k in ("version", "fn", "chunksize", "n", "fingerprint"):
                want = _VERSION if k == "version" else job.get(k)
                if stored.get(k) != want:
                    raise StoreMismatchError(
                        f"Invalid resume store {str(self.path)!r}: it was made by another job "
                        f"({k}={stored.get(k)!r}, this job has {want!r}); resume into a new "
                        "directory, or rerun without resume to start over.")
            self.runs = list(stored.get("runs", []))
        else:
            self.clear()
        for tmp in self.path.glob(".chunk-*.tmp*"):  # left by a run killed while writing
            tmp.unlink(missing_ok=True)
        self.job = {k: job.get(k) for k in ("fn", "chunksize", "n", "fingerprint")}
        self.job["version"] = _VERSION
        self.write_manifest()

    @property
    def chunksize(self) -> int:
        """Units per chunk of this store."""
        return int(self.job["chunksize"])

    def clear(self) -> None:
        """Remove the chunk files and manifest of a previous job."""
        for p in self.path.glob("chunk-*.bin"):
            p.unlink()
        (self.path / "manifest.json").unlink(missing_ok=True)

    # -- manifest --------------------------------------------------------------------------
    def _read_manifest(self, man: Path) -> dict[str, Any]:
        try:
            obj = json.loads(man.read_text())
            body = {k: obj[k] for k in ("version", "fn", "chunksize", "n", "fingerprint")}
            ok = hmac.compare_digest(str(obj["signature"]), _sign(self._key, _canon(body)))
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise StoreMismatchError(
                f"Invalid resume store {str(self.path)!r}: its manifest is not signed by this "
                f"user's key ({store_key_path()}) or is damaged; it is not loaded. Resume into "
                "a new directory, or rerun without resume to start over.")
        return obj

    def write_manifest(self) -> None:
        """Write the (signed) manifest with the run log."""
        obj = dict(self.job, signature=_sign(self._key, _canon(self.job)), runs=self.runs)
        text = json.dumps(obj, indent=1, sort_keys=True)
        atomic_write(self.path / "manifest.json", lambda tmp: Path(tmp).write_text(text))

    def log_run(self, stats: dict[str, Any]) -> None:
        """Append ``stats`` of one run to the manifest."""
        self.runs.append(dict(stats))
        self.write_manifest()

    # -- chunks ----------------------------------------------------------------------------
    def _file(self, start: int, stop: int) -> Path:
        return self.path / f"chunk-{start:09d}-{stop:09d}.bin"

    def has(self, start: int, stop: int) -> bool:
        """Whether the chunk ``[start, stop)`` is stored."""
        return self._file(start, stop).exists()

    def save(self, start: int, stop: int, results: list[Any], units_sha: str | None,
             n_failed: int = 0) -> None:
        """Write a finished chunk atomically (``n_failed``: its failed units)."""
        payload = pickle.dumps(results, protocol=5)
        head = json.dumps({"start": start, "stop": stop, "units_sha256": units_sha,
                           "n_failed": int(n_failed)}, sort_keys=True).encode()
        body = struct.pack("<Q", len(head)) + head + payload
        sig = _sign(self._key, body).encode()
        blob = _MAGIC + sig + body
        atomic_write(self._file(start, stop), lambda tmp: Path(tmp).write_bytes(blob))

    def failed(self, start: int, stop: int) -> int | None:
        """Failed units recorded in the stored chunk's header (None: not stored or unreadable).

        The header is only a hint (the signature is checked by :meth:`load`).
        """
        try:
            with open(self._file(start, stop), "rb") as f:
                f.seek(len(_MAGIC) + 64)
                (n_head,) = struct.unpack("<Q", f.read(8))
                return int(json.loads(f.read(min(n_head, 4096)))["n_failed"])
        except (OSError, ValueError, KeyError, TypeError, struct.error):
            return None

    def load(self, start: int, stop: int, units_sha: str | None) -> list[Any]:
        """Results of the stored chunk ``[start, stop)``, after checking its signature.

        Raises
        ------
        StoreMismatchError
            Bad signature, or the chunk was computed from other units.
        """
        path = self._file(start, stop)
        blob = path.read_bytes()
        n_sig = 64
        sig, body = blob[len(_MAGIC):len(_MAGIC) + n_sig], blob[len(_MAGIC) + n_sig:]
        if not (blob.startswith(_MAGIC)
                and hmac.compare_digest(sig, _sign(self._key, body).encode())):
            raise StoreMismatchError(f"Invalid resume store file {str(path)!r}: not signed by "
                                     "this user's key or damaged; it is not loaded.")
        (n_head,) = struct.unpack("<Q", body[:8])
        head = json.loads(body[8:8 + n_head])
        if (head.get("start"), head.get("stop")) != (start, stop) or (
                units_sha is not None and head.get("units_sha256") != units_sha):
            raise StoreMismatchError(
                f"Invalid resume store file {str(path)!r}: it was computed from other units "
                "than this job's; resume into a new directory, or rerun without resume.")
        return pickle.loads(body[8 + n_head:])  # noqa: S301  (signed by this user, above)


def _canon(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
