"""Writing the suite's records so that a crash or a full disk never loses what was there before.

Every record, summary, report, manifest and checkpoint goes through :func:`atomic_writer`: the bytes
go to a temporary file beside the target, are flushed to disk, and only then renamed over it, so
a kill or an ``ENOSPC`` at any moment leaves either the old file or the new one, never an empty
or half-written one. A failed write raises :class:`WriteError`, one line naming the path and the
cause (the CLI prints it as is), and removes its temporary file.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

__all__ = ["WriteError", "atomic_writer", "atomic_write_text", "atomic_write_json", "artifact_lock"]

_HINTS = {errno.ENOSPC: "free some space, or write the run elsewhere (eyegen run --out DIR)",
          errno.EDQUOT: "free some space, or write the run elsewhere (eyegen run --out DIR)",
          errno.EACCES: "make the folder writable, or write the run elsewhere (eyegen run --out DIR)",
          errno.EROFS: "the file system is read-only: write the run elsewhere (eyegen run --out DIR)",
          errno.EFBIG: "a file-size limit (ulimit -f, or the file system's) refuses it: raise the limit, or write "
                       "the run elsewhere (eyegen run --out DIR)"}


class WriteError(OSError):
    """A record could not be written; what was there before is untouched. ``str()`` is one line."""

    def __init__(self, path: Path, cause: OSError):
        reason = cause.strerror or type(cause).__name__
        hint = _HINTS.get(cause.errno, "")
        super().__init__(cause.errno, f"could not write {path}: {reason}; the earlier file is kept"
                                      + (f" ({hint})" if hint else ""))
        self.path = path

    def __str__(self) -> str:
        return self.strerror


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """``with atomic_writer(path) as f: f.write(…)`` — ``path`` is replaced only when the block ends
    without an error and the bytes are on disk. ``mode`` is ``"w"`` (UTF-8 text) or ``"wb"``."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_writer writes whole files: mode 'w' or 'wb', got {mode!r}")
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; records are shared like any file
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        if isinstance(exc, WriteError):
            raise
        raise WriteError(path, exc) from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_writer(path) as f:
        f.write(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, data: Any, **dump_kw) -> Path:
    """JSON to ``path`` atomically; the text is made first, so data that cannot be serialised
    leaves the file as it was."""
    text = json.dumps(data, **dump_kw)
    return atomic_write_text(path, text + "\n")


@contextlib.contextmanager
def artifact_lock(path: str | os.PathLike, what: str = "") -> Iterator[None]:
    """Hold ``<path>.lock`` exclusively for the block: two runs that want one artifact take turns, so
    the second waits for the first's training and then loads its result instead of training again.
    The lock is the operating system's (``flock``): it is released when its holder ends, however it
    ends, so a killed run never leaves a stale lock. The empty ``.lock`` file stays beside the
    artifact. Where ``flock`` does not exist (Windows) the block runs unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    lock = Path(str(path) + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"note: another run is making {what or Path(path).name}; waiting for it (lock {lock})",
                  file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
