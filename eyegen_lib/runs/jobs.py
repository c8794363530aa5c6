"""How a model family's artifact is named, described and obtained: the pieces every family's
:meth:`~eyegen_lib.runs.family.ModelFamily.obtain` shares.

* :func:`artifact_path` — the only place a model file's name is made:
  ``<outputs>/checkpoints/<profile>/seed<seed>/<name>[_<variant>].pt``;
* :func:`training_job` — the job of one artifact: its file, its provenance (profile, seed, config, data
  recipe) and how to build or train it;
* :func:`obtain_artifact` — load or train it through :func:`eyegen_lib.runs.engine.obtain` and note it in the
  notebook's record;
* ``pretrained``: ``True`` takes the zoo's entries where they serve the run (for the model and the
  models it needs), :data:`UPSTREAM` only the models it needs, ``False`` never reads the zoo.
"""
from __future__ import annotations

from pathlib import Path

from ..core.paths import output_dir
from ..core.profiles import Profile
from .engine import Checkpointing, TrainingJob, obtain
from .family import families, family
from .provenance import make_provenance
from .record import Recorder

__all__ = ["artifact_path", "seed_dir", "training_job", "obtain_artifact", "record_use", "upstream", "check_pretrained",
           "UPSTREAM", "ONE_CYCLE"]

UPSTREAM = "upstream"  # pretrained=UPSTREAM: the models a request needs from the zoo, the model itself made here
ONE_CYCLE = "a one-cycle learning rate over all steps"


def seed_dir(kind: str, profile: Profile, seed: int) -> Path:
    """``<outputs>/<kind>/<profile's run name>/seed<seed>``: each profile, data source and seed apart."""
    return output_dir() / kind / profile.run_name / f"seed{int(seed)}"


def artifact_path(name: str, profile: Profile, *, seed: int = 0, variant: str = "") -> Path:
    """Where a family's artifact lives (the only place model file names are made)."""
    try:
        family(name)
    except ValueError:
        raise ValueError(f"unknown artifact {name!r}: choose one of {sorted(families())}") from None
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in variant)
    return seed_dir("checkpoints", profile, seed) / (f"{name}_{safe}.pt" if variant else f"{name}.pt")


def check_pretrained(pretrained) -> None:
    if pretrained not in (False, True, UPSTREAM):
        raise ValueError(f"pretrained={pretrained!r}: give True (the zoo's entries where they serve the run), False "
                         f"(every model loaded or trained here) or {UPSTREAM!r} (the models it needs from the zoo, "
                         "this one made here)")


def upstream(pretrained) -> bool:
    """What a request asks of the models it needs: the zoo's wherever it asks for any."""
    check_pretrained(pretrained)
    return bool(pretrained)


def record_use(name: str, variant: str, info: dict) -> None:
    """Tell the current notebook's record which artifact it used (file, sha256, seed, fingerprint, origin)."""
    rec = Recorder.current()
    if rec is None:
        return
    prov = info.get("provenance") or {}
    rec.artifact(name + (f"/{variant}" if variant else ""), file=info["path"], sha256=info["sha256"],
                 seed=prov.get("seed"), profile=prov.get("profile"),
                 fingerprint=(prov.get("data") or {}).get("fingerprint"), trained_now=bool(info["trained_now"]),
                 train_seconds=info.get("train_seconds"), step=info.get("step"), resumed_from=info.get("resumed_from"),
                 source=info.get("source"))


def training_job(name: str, variant: str, profile: Profile, seed: int, config, recipe: dict, *, make_model, make_run,
                 snapshots=(), fixed_schedule: str | None = None) -> TrainingJob:
    """The training job of one artifact: its file, provenance and how to build or train it."""
    fam = family(name)
    return TrainingJob(name=name + (f"/{variant}" if variant else ""), kind=fam.kind, config=config,
                       path=artifact_path(name, profile, seed=seed, variant=variant),
                       provenance=make_provenance(profile=profile, seed=seed, config=config, data=recipe), seed=seed,
                       make_model=make_model, make_run=make_run, snapshots=tuple(snapshots),
                       fixed_schedule=fixed_schedule, how_to_make=fam.how_to_make(profile, seed, variant),
                       data_workers=profile.num_workers if profile.stream_data else 0)


def obtain_artifact(job: TrainingJob, name: str, variant: str, *, pretrained, retrain: bool, train: bool,
                    progress: bool, on_log=None, checkpointing: Checkpointing | None = None):
    """Load or train (resuming) through :func:`eyegen_lib.runs.engine.obtain`, and note it in the record."""
    check_pretrained(pretrained)
    model, info = obtain(job, retrain=retrain, allow_training=train, progress=progress, on_log=on_log,
                         checkpointing=checkpointing,
                         # the zoo is trained on the renderer: it never serves a run on a real dataset
                         pretrained=pretrained != UPSTREAM and bool(pretrained) and "+" not in job.provenance["profile"])
    record_use(name, variant, info)
    return model, info
