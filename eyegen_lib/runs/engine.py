"""The one load-or-train path of every model: resumable, data-parallel, with provenance.

A :class:`TrainingJob` says what to make — the artifact's file, kind, config and provenance, how to
build an empty model (to load into) and how to build a training run (models, optimizers,
schedulers and batches; data is rendered only then). :func:`obtain` then

1. loads the finished artifact when it matches the run (profile, seed, config, data fingerprint);
2. otherwise trains, resuming from the job's training state when one exists
   (``<artifact>.train-state.pt``: models, optimizers, schedules, the step, the loss history and
   every RNG of every process — python, numpy, torch, the trainer's augmentation generators; batch
   i is a pure function of (seed, rank, i), so the step is the sampler's position). The state is
   written atomically every ``every_steps`` steps and every ``every_minutes`` minutes, and on
   Ctrl-C, which then stops cleanly. A run killed at any moment (SIGKILL included) and started
   again with the same command finishes bit-identical, on the same machine, to one never stopped;
3. saves the artifact (and any snapshots a job keeps on the way, e.g. the ablations' reference).

Under ``torchrun`` every process runs this; each trains on its own shard, only rank 0 writes
(state, snapshots, artifact, evaluation) and the others wait for it at a barrier.
"""
from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.checkpoint import (
    ArtifactMismatch,
    CheckpointError,
    atomic_save,
    config_differences,
    config_to_dict,
    file_sha256,
    load_checkpoint,
    save_checkpoint,
    set_aside,
)
from ..core.distributed import DistInfo, any_rank, barrier, broadcast_buffers, gather_objects, init_distributed
from ..core.files import artifact_lock, atomic_writer
from ..core.runtime import seed_everything
from ..core.training import TrainingRun, TrainingStopped, history_columns
from .provenance import provenance_differences, with_config
from .zoo import find_entry, load_entry, why_no_entry

__all__ = ["TrainingJob", "Snapshot", "Checkpointing", "obtain", "state_path", "length_snapshot_path", "with_steps",
           "ResumeRefused", "STATE_FORMAT"]

STATE_FORMAT = "eyegen-training-state"
RANK_SEED_OFFSET = 1_000_003  # rank r draws its own random streams from seed + r · this


class ResumeRefused(ArtifactMismatch):
    """A training state that this run may not continue: another config, another process count, or a
    finished schedule asked for more steps. The message says what differs and what to do."""


@dataclass(frozen=True)
class Snapshot:
    """Save the model after ``step`` steps at ``path`` as an artifact of ``config`` (e.g. the
    reference of shorter ablations: with a constant learning rate up to there it is exactly a run
    of that length)."""
    step: int
    path: Path
    config: Any


@dataclass
class Checkpointing:
    every_steps: int = 1000
    every_minutes: float = 5.0
    on_other_state: str = "set_aside"  # or "refuse": a state of another run is kept and the call refused
    keep_at: tuple[int, ...] = ()  # also save the model after these steps: <artifact>.step<N>.pt (training length studies)


@dataclass
class TrainingJob:
    name: str  # "seg2eye/full": what the messages and the record call it
    kind: str  # checkpoint kind
    config: Any  # a dataclass config with ``steps``
    path: Path
    provenance: dict
    seed: int
    make_model: Callable[[], nn.Module]
    make_run: Callable[[DistInfo], TrainingRun]
    snapshots: tuple[Snapshot, ...] = ()
    fixed_schedule: str | None = None  # why a finished run cannot continue to more steps (None: it can)
    how_to_make: str = ""
    log_every: int | None = None
    extra_metrics: dict = field(default_factory=dict)
    data_workers: int = 0  # DataLoader worker processes that build its batches (the profile's num_workers)


def length_snapshot_path(artifact: str | os.PathLike, step: int) -> Path:
    """Where ``Checkpointing.keep_at`` keeps the model of a run after ``step`` steps (beside it)."""
    artifact = Path(artifact)
    return artifact.with_name(f"{artifact.stem}.step{int(step)}.pt")


def state_path(artifact: str | os.PathLike) -> Path:
    """Where the training state of an artifact lives (beside it)."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.stem + ".train-state.pt")


def with_steps(config, steps: int | None):
    """``config`` trained for ``steps`` steps (None: unchanged); a shorter run keeps its ablation
    length within it."""
    if steps is None:
        return config
    if int(steps) < 1:
        raise ValueError(f"--steps must be ≥ 1, got {steps}")
    changes = {"steps": int(steps)}
    ablation = getattr(config, "ablation_steps", None)
    if ablation is not None and ablation > steps:
        changes["ablation_steps"] = int(steps)
    return replace(config, **changes)


# -- RNG state of one process ------------------------------------------------------------------------
def _rng_state() -> dict:
    py = random.getstate()
    npk, npos, has_gauss, gauss = np.random.get_state()[1:]
    return {"python": torch.tensor(py[1], dtype=torch.int64), "python_gauss": py[2],
            "numpy": torch.from_numpy(npk.astype(np.int64)), "numpy_pos": int(npos), "numpy_has_gauss": int(has_gauss),
            "numpy_gauss": float(gauss), "torch": torch.get_rng_state(),
            "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else []}


def _set_rng_state(state: dict) -> None:
    random.setstate((3, tuple(int(v) for v in state["python"].tolist()), state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"],
                         state["numpy_has_gauss"], state["numpy_gauss"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- the trace a test reads (which samples each rank drew, what it wrote) ---------------------------------
class _Trace:
    def __init__(self, dist: DistInfo):
        folder = os.environ.get("EYEGEN_TRACE_DIR")
        self.path = Path(folder) / f"trace-rank{dist.rank}.pt" if folder else None
        self.samples: list[torch.Tensor] = []
        self.wrote: list[str] = []

    def drew(self, batches, step: int) -> None:
        if self.path is not None and hasattr(batches, "sample_ids"):
            self.samples.append(torch.as_tensor(batches.sample_ids(step)).flatten())

    def write(self, model: nn.Module) -> None:
        if self.path is not None:
            with atomic_writer(self.path, "wb") as f:
                torch.save({"samples": torch.cat(self.samples) if self.samples else torch.zeros(0, dtype=torch.int64),
                            "weights": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                            "wrote": self.wrote}, f)


# -- reading a training state ----------------------------------------------------------------------------
def _read_state(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable training state ({type(exc).__name__}); it was left untouched — "
                              "move it away to train from the start") from exc
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path} is not an eyegen training state; move it away to train from the start")
    return state


def _resume_problem(state: dict, job: TrainingJob, dist: DistInfo, path: Path) -> str | None:
    """Why this state cannot be resumed by this job (None: it can)."""
    diffs = provenance_differences(state.get("provenance"), job.provenance)
    saved_cfg = dict(state.get("config", {}))
    wanted = config_to_dict(job.config)
    only_steps = diffs and all(d.startswith("config") for d in diffs) and \
        config_differences({**saved_cfg, "steps": 0, "ablation_steps": 0}, {**wanted, "steps": 0, "ablation_steps": 0}) == []
    if diffs and not only_steps:
        return (f"{path} holds a training of another run:\n  " + "\n  ".join(diffs))
    if only_steps:
        done, want = int(state["step"]), int(wanted["steps"])
        if want < done:
            return f"{path} has already trained {done} steps, more than the {want} asked for:\n  " + "\n  ".join(diffs)
        if job.fixed_schedule is not None:
            return (f"{path} was trained for {saved_cfg.get('steps')} steps and its schedule ({job.fixed_schedule}) is "
                    f"fixed by that length: it cannot be continued to {want} steps:\n  " + "\n  ".join(diffs))
    if int(state.get("world_size", 1)) != dist.world_size:
        return (f"{path} was saved by {state.get('world_size', 1)} process(es) and this run has {dist.world_size}: "
                "resume with the same number of processes (torchrun --nproc_per_node)")
    return None


# -- the one load-or-train helper -----------------------------------------------------------------------
def _info(ckpt: dict, path: Path, trained_now: bool, seconds: float | None, source: str) -> dict:
    extra = ckpt.get("extra") or {}
    return {"step": int(ckpt["step"]), "metrics": dict(ckpt.get("metrics") or {}), "history": extra.get("history", {}),
            "precision": extra.get("precision", "fp32"), "source": source,
            "trained_now": trained_now, "path": str(path), "sha256": ckpt.get("file_sha256") or file_sha256(path),
            "provenance": ckpt.get("provenance") or {}, "train_seconds": seconds}


def obtain(job: TrainingJob, *, retrain: bool = False, allow_training: bool = True, progress: bool = True,
           on_log=None, checkpointing: Checkpointing | None = None, pretrained: bool = False) -> tuple[nn.Module, dict]:
    """Load ``job``'s artifact if it matches the run, else train it (resuming its training state)
    and save it. Returns (model in eval mode, info: ``step``, ``metrics``, ``history`` (the loss
    columns, :func:`~eyegen_lib.core.training.history_columns`), ``source`` ("zoo", "loaded" or "trained
    here"), ``trained_now``, ``path``, ``sha256``, ``provenance``, ``train_seconds``, ``resumed_from``).

    With ``pretrained`` the zoo's entry that serves the run (:mod:`eyegen_lib.runs.zoo`: the same model
    trained longer) is loaded first; when none does, the call goes on as without it, saying why.
    An artifact made for another run is set aside (nothing is lost) and retrained — or refused with
    ``allow_training=False``, saying what differs and how to make it. ``retrain=True`` sets the
    artifact and its training state aside and trains from step 0 (the zoo is not asked).
    """
    ck = checkpointing or Checkpointing()
    dist = init_distributed()
    path, spath = Path(job.path), state_path(job.path)
    hint = f" ({job.how_to_make})" if job.how_to_make else ""
    if pretrained and not retrain:
        entry = find_entry(job.kind, job.name, job.provenance)
        if entry is not None:
            model = job.make_model()
            ckpt = load_entry(entry, kind=job.kind, model=model, provenance=job.provenance)
            return model.eval(), {**_info(ckpt, Path(ckpt["path"]), False, None, "zoo"), "resumed_from": None,
                                  "zoo": {k: entry.get(k) for k in ("file", "steps", "command", "wall_seconds", "machine")}}
        why = why_no_entry(job.kind, job.name, job.provenance)
        if why and dist.is_main:
            print(f"note: {why}")
    # one run at a time per artifact: a second run waits here for the first's training, then loads it
    with artifact_lock(path, job.name) if dist.is_main else contextlib.nullcontext():
        return _load_or_train(job, path, spath, hint, dist, ck, retrain=retrain, allow_training=allow_training,
                              progress=progress, on_log=on_log)


def _load_or_train(job: TrainingJob, path: Path, spath: Path, hint: str, dist: DistInfo, ck: Checkpointing, *,
                   retrain: bool, allow_training: bool, progress: bool, on_log):
    barrier(dist)  # every rank reads the files before rank 0 moves any
    stale = None
    if path.exists() and not retrain:
        try:
            model = job.make_model()
            ckpt = load_checkpoint(path, kind=job.kind, model=model, config=job.config, provenance=job.provenance)
            return model.eval(), {**_info(ckpt, path, False, None, "loaded"), "resumed_from": None}
        except ArtifactMismatch as exc:
            if not allow_training:
                raise ArtifactMismatch(f"{exc}\nTraining was not allowed here; make a matching {job.name}{hint}.",
                                       exc.differences) from None
            stale = exc
    elif not allow_training:
        raise CheckpointError(f"retraining {job.name} was asked for but training is not allowed here{hint}" if retrain
                              else f"no {job.name} artifact at {path}{hint}")
    # decide about the training state before anything is moved: a refusal leaves every file as it was
    state = _read_state(spath) if spath.exists() and not retrain else None
    problem = _resume_problem(state, job, dist, spath) if state is not None else None
    if problem is not None and ck.on_other_state == "refuse":
        raise ResumeRefused(problem + "\nTo start over, run with --restart (the old state is kept beside it, renamed).",
                            [problem])
    barrier(dist)
    if dist.is_main:
        if stale is not None:
            aside = set_aside(path)
            print(f"note: {path.name} was made for another run ({'; '.join(stale.differences[:3])}"
                  f"{' …' if len(stale.differences) > 3 else ''}); kept as {aside.name}, training a new one")
        if retrain:
            for p in (path, spath):
                if p.exists():
                    print(f"note: retraining {job.name}: kept the old {p.name} as {set_aside(p).name}")
        if problem is not None:
            print(f"note: {problem.splitlines()[0]}; kept it as {set_aside(spath).name}, training from step 0")
    barrier(dist)
    return _train(job, None if problem is not None else state, dist, ck, progress=progress, on_log=on_log)


def _train(job: TrainingJob, state: dict | None, dist: DistInfo, ck: Checkpointing, *, progress: bool, on_log):
    seed_everything(job.seed)  # identical initial weights on every rank
    run = job.make_run(dist)
    run.batches.workers = job.data_workers
    trainer = run.trainer
    if dist.rank > 0:  # then each rank its own random streams (dropout, interpolates …)
        seed_everything(job.seed + RANK_SEED_OFFSET * dist.rank)
    elapsed = 0.0
    resumed_from = None
    if state is not None:
        if state.get("precision", "fp32") != trainer.precision:
            raise ResumeRefused(f"{state_path(job.path)} was trained in {state.get('precision', 'fp32')} and this run "
                                f"would continue in {trainer.precision}: set EYEGEN_PRECISION={state.get('precision', 'fp32')} "
                                "(eyegen train --precision) to resume it, or --restart", ["precision"])
        trainer.load_state_dict(state["trainer"])
        own = state["rng"][dist.rank]
        _set_rng_state(own["process"])
        trainer.set_generator_states(own["generators"])
        elapsed = float(state.get("train_seconds", 0.0))
        resumed_from = trainer.step
        if dist.is_main and trainer.step < job.config.steps:
            print(f"resuming {job.name} at step {trainer.step} of {job.config.steps} from {state_path(job.path).name}")
    trace = _Trace(dist)
    spath = state_path(job.path)
    started = time.perf_counter()
    last_save = [time.monotonic()]
    stop = {"asked": False}
    kill_at = int(os.environ.get("EYEGEN_KILL_AT_STEP", "0") or 0)  # tests: a real SIGKILL after this step

    def save_state() -> None:
        rng = gather_objects({"process": _rng_state(), "generators": trainer.generator_states()}, dist)
        if dist.is_main:
            atomic_save({"format": STATE_FORMAT, "kind": job.kind, "name": job.name, "config": config_to_dict(job.config),
                         "provenance": job.provenance, "step": trainer.step, "world_size": dist.world_size,
                         "precision": trainer.precision,
                         "trainer": trainer.state_dict(), "rng": rng,
                         "train_seconds": elapsed + time.perf_counter() - started}, spath)
            trace.wrote.append(str(spath))
        last_save[0] = time.monotonic()
        barrier(dist)

    def on_step(step: int) -> bool:
        trace.drew(run.batches, step - 1)
        for snap in job.snapshots:
            if step == snap.step and dist.is_main:
                save_checkpoint(snap.path, kind=job.kind, model=run.model, config=snap.config, step=step,
                                extra={"history": history_columns(trainer.history)},
                                provenance=with_config(job.provenance, snap.config))
                trace.wrote.append(str(snap.path))
        if step in ck.keep_at and dist.is_main:  # the long run at this length (its config: the whole run's)
            kept = length_snapshot_path(job.path, step)
            save_checkpoint(kept, kind=job.kind, model=run.model, config=job.config, step=step,
                            extra={"history": history_columns(trainer.history), "snapshot_of": Path(job.path).name,
                                   "train_seconds": elapsed + time.perf_counter() - started},
                            provenance=job.provenance)
            trace.wrote.append(str(kept))
        due = (ck.every_steps > 0 and step % ck.every_steps == 0) or \
            (ck.every_minutes > 0 and time.monotonic() - last_save[0] > 60 * ck.every_minutes)
        due, asked = any_rank([due and step < job.config.steps, stop["asked"]], dist)
        if due or asked:
            save_state()
        if kill_at and step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return asked

    def interrupt(signum, frame):  # Ctrl-C: finish the step, save, stop
        if stop["asked"]:
            raise KeyboardInterrupt
        stop["asked"] = True
        if dist.is_main:
            print(f"\nstopping {job.name}: saving the training state after this step (Ctrl-C again to abort)")

    handler_set = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, interrupt) if handler_set else None
    try:
        trainer.fit(run.batches, job.config.steps, log_every=job.log_every, desc=job.name, on_log=on_log,
                    progress=progress, on_step=on_step)
    except TrainingStopped:
        if dist.is_main:
            print(f"{job.name}: saved at step {trainer.step} of {job.config.steps} in {spath}; "
                  "run the same command again to resume")
        raise
    finally:
        if handler_set:
            signal.signal(signal.SIGINT, previous)
    seconds = elapsed + time.perf_counter() - started
    run.model.eval()
    broadcast_buffers(run.model, dist)
    if dist.is_main:
        metrics = {**job.extra_metrics, **(run.evaluate(run.model) if run.evaluate is not None else {})}
        save_state()  # the finished state: a later, longer run continues from it where the schedule allows
        save_checkpoint(job.path, kind=job.kind, model=run.model, config=job.config, step=trainer.step, metrics=metrics,
                        extra={"history": history_columns(trainer.history), "precision": trainer.precision},
                        provenance=job.provenance)
        trace.wrote.append(str(job.path))
    else:
        save_state()
    barrier(dist)
    trace.write(run.model)
    ckpt = load_checkpoint(job.path, kind=job.kind, config=job.config)  # what was written (all ranks read it)
    return run.model, {**_info(ckpt, Path(job.path), True, seconds, "trained here"), "resumed_from": resumed_from}
