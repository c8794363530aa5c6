"""Small training jobs for the engine tests (eyegen_lib.runs.engine.obtain), outside the registry."""
from __future__ import annotations

from pathlib import Path

from eyegen_lib.core.checkpoint import config_to_dict
from eyegen_lib.runs.engine import Snapshot, TrainingJob


def provenance_of(config, seed: int = 0) -> dict:
    return {"profile": "test", "seed": seed, "config": config_to_dict(config), "data": {"fingerprint": "test-data"}}


def job(path: Path, kind: str, config, make_model, make_run, *, seed: int = 0, snapshot: tuple | None = None,
        fixed_schedule: str | None = None, provenance: dict | None = None) -> TrainingJob:
    """A job of ``kind``; ``snapshot`` = (step, path, config) keeps a snapshot on the way."""
    return TrainingJob(name=kind, kind=kind, config=config, path=Path(path),
                       provenance=provenance or provenance_of(config, seed), seed=seed, make_model=make_model,
                       make_run=make_run, snapshots=(Snapshot(*snapshot),) if snapshot else (),
                       fixed_schedule=fixed_schedule)
