"""Whether a notebook's recorded run still matches the files it read (the report's "stale" mark).

A notebook's record lists every artifact it read with the file's sha256 (:meth:`Recorder.artifact`)
and the inputs it looked for and did not find (:meth:`Recorder.absent`, e.g. 07 run before 04 has
saved Seg2Eye's outputs). Its run is stale once one of those files has changed since, is gone, or
has appeared: re-running the notebook brings its numbers up to date.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

__all__ = ["stale_reasons"]


@lru_cache(maxsize=512)
def _sha256(path: str, mtime_ns: int, size: int) -> str:  # keyed by mtime and size: a report build hashes once
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _changed_at(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def stale_reasons(result: dict) -> list[str]:
    """Why ``result`` (one notebook's ``metrics/*.json``) no longer matches the files it read; [] if it does."""
    own = {p["file"] for p in result.get("produced", [])}  # a notebook re-reading what it wrote is not stale
    reasons = []
    for a in result.get("artifacts", []):
        path = Path(str(a.get("file", "")))
        if a["file"] in own:
            continue
        if not path.is_file():
            reasons.append(f"{a['name']} ({path.name}) is gone")
            continue
        stat = path.stat()
        if a.get("sha256") and _sha256(str(path), stat.st_mtime_ns, stat.st_size) != a["sha256"]:
            reasons.append(f"{a['name']} ({path.name}) was rewritten at {_changed_at(path)}, after this notebook read it")
    for x in result.get("absent_inputs", []):
        path = Path(x["file"])
        if x["file"] not in own and path.is_file():
            reasons.append(f"{x['name']} exists now (made {_changed_at(path)}) but did not when this notebook ran, "
                           "so its results leave it out")
    return reasons
