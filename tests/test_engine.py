"""The one load-or-train path (eyegen_lib.runs.engine): load a matching artifact, never another run's;
resume a stopped training exactly; continue a finished one where its schedule allows."""
import os
import signal
from dataclasses import dataclass, replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from eyegen_lib.core.checkpoint import ArtifactMismatch, CheckpointError, load_checkpoint, save_checkpoint
from eyegen_lib.core.training import SupervisedTrainer, TrainingRun, TrainingStopped
from eyegen_lib.runs.engine import Checkpointing, ResumeRefused, obtain, state_path
from eyegen_lib.science.batches import EpochBatches

from .engine_helpers import job, provenance_of


@dataclass(frozen=True)
class TinyConfig:
    width: int = 8
    steps: int = 12
    lr: float = 0.03


def tiny_model(config):
    return nn.Sequential(nn.Linear(3, config.width), nn.ReLU(), nn.Dropout(0.3), nn.Linear(config.width, 1))


class InterruptingTrainer(SupervisedTrainer):
    """Sends this process a SIGINT (Ctrl-C) during step ``at`` (0: never)."""
    at = 0

    def train_step(self, batch):
        if self.step + 1 == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return super().train_step(batch)


def tiny_job(path, config=TinyConfig(), *, seed=0, schedule=False, interrupt_at=0, **kwargs):
    """Adam on a small MLP with dropout (global torch RNG) and, with ``schedule``, a one-cycle rate."""
    def make_run(dist):
        model = tiny_model(config)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        scheds = {"lr": torch.optim.lr_scheduler.OneCycleLR(opt, config.lr, total_steps=config.steps)} if schedule else {}
        trainer = InterruptingTrainer(model, opt, F.mse_loss, device="cpu", dist_info=dist, schedulers=scheds)
        trainer.at = interrupt_at
        g = torch.Generator().manual_seed(5)
        x = torch.randn(40, 3, generator=g)
        return TrainingRun(trainer, EpochBatches((x, x.sum(1, keepdim=True)), 8, seed=seed, dist=dist), model,
                           evaluate=lambda m: {"weight_norm": float(m[0].weight.detach().norm())})

    return job(path, "tiny", config, lambda: tiny_model(config), make_run, seed=seed,
               fixed_schedule="one-cycle" if schedule else None, **kwargs)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_trains_once_then_loads_with_its_history(tmp_path):
    model, info = obtain(tiny_job(tmp_path / "m.pt"), progress=False)
    assert info["trained_now"] and info["step"] == 12 and info["history"]["step"][-1] == 12
    assert set(info["history"]) == {"step", "loss"} and info["metrics"]["weight_norm"] > 0
    assert state_path(tmp_path / "m.pt").exists() and len(info["sha256"]) == 64
    again, info2 = obtain(tiny_job(tmp_path / "m.pt"), progress=False)
    assert not info2["trained_now"] and info2["sha256"] == info["sha256"] and info2["history"] == info["history"]
    assert same_weights(model, again)


def test_an_artifact_of_another_run_is_refused_or_set_aside_never_loaded(tmp_path, capsys):
    path = tmp_path / "m.pt"
    obtain(tiny_job(path), progress=False)
    for other, what in ((dict(seed=1), "seed: artifact has 0, this run 1"),
                        (dict(config=TinyConfig(width=4)), "width: checkpoint has 8, you asked for 4")):
        j = tiny_job(path, **other)
        j.how_to_make = "run 02_ranking with SEED=1"
        with pytest.raises(ArtifactMismatch, match=what) as err:
            obtain(j, allow_training=False)
        assert "run 02_ranking with SEED=1" in str(err.value)
    assert load_checkpoint(path)["provenance"]["seed"] == 0  # untouched
    _, info = obtain(tiny_job(path, seed=1), progress=False)  # retrained; the old file kept beside
    assert info["trained_now"] and "made for another run" in capsys.readouterr().out
    kept = list(tmp_path.glob("m.replaced-*.pt"))
    assert len(kept) == 1 and load_checkpoint(kept[0])["provenance"]["seed"] == 0
    assert load_checkpoint(path)["provenance"]["seed"] == 1


def test_a_file_without_provenance_or_of_another_model_is_not_used(tmp_path):
    old = save_checkpoint(tmp_path / "old.pt", kind="tiny", model=tiny_model(TinyConfig()), config=TinyConfig())
    with pytest.raises(ArtifactMismatch, match="no provenance"):
        obtain(tiny_job(old), allow_training=False)
    other = save_checkpoint(tmp_path / "other.pt", kind="other", model=tiny_model(TinyConfig()), config=TinyConfig())
    with pytest.raises(CheckpointError, match="not a 'tiny'"):  # another model: an error, never trained over
        obtain(tiny_job(other))
    with pytest.raises(CheckpointError, match="no tiny artifact"):
        obtain(tiny_job(tmp_path / "absent.pt"), allow_training=False)


def test_ctrl_c_saves_and_the_same_call_resumes_bit_identical(tmp_path, capsys):
    reference, ref_info = obtain(tiny_job(tmp_path / "a.pt"), progress=False)
    with pytest.raises(TrainingStopped):
        obtain(tiny_job(tmp_path / "b.pt", interrupt_at=5), progress=False,
               checkpointing=Checkpointing(every_steps=0, every_minutes=0))
    assert not (tmp_path / "b.pt").exists() and state_path(tmp_path / "b.pt").exists()
    assert "run the same command again to resume" in capsys.readouterr().out
    resumed, info = obtain(tiny_job(tmp_path / "b.pt"), progress=False)
    assert info["resumed_from"] == 5 and info["step"] == 12
    assert same_weights(reference, resumed), "a resumed run ends where an uninterrupted one does"
    assert info["history"] == ref_info["history"]


def test_a_finished_run_continues_where_its_schedule_allows_and_says_why_not_elsewhere(tmp_path):
    long_config = replace(TinyConfig(), steps=20)
    straight, _ = obtain(tiny_job(tmp_path / "straight.pt", long_config), progress=False)
    obtain(tiny_job(tmp_path / "m.pt"), progress=False)  # 12 steps, constant rate
    longer, info = obtain(tiny_job(tmp_path / "m.pt", long_config), progress=False,
                          checkpointing=Checkpointing(on_other_state="refuse"))
    assert info["resumed_from"] == 12 and info["step"] == 20
    assert same_weights(straight, longer), "12 steps then 8 more = 20 steps at a constant rate"

    obtain(tiny_job(tmp_path / "s.pt", schedule=True), progress=False)
    with pytest.raises(ResumeRefused, match="(?s)one-cycle.*cannot be continued to 20 steps"):
        obtain(tiny_job(tmp_path / "s.pt", long_config, schedule=True), progress=False,
               checkpointing=Checkpointing(on_other_state="refuse"))
    assert load_checkpoint(tmp_path / "s.pt")["step"] == 12, "a refusal moves nothing"


def test_a_state_of_another_config_is_refused_with_what_differs_or_set_aside(tmp_path, capsys):
    with pytest.raises(TrainingStopped):
        obtain(tiny_job(tmp_path / "m.pt", interrupt_at=3), progress=False)
    other = TinyConfig(lr=0.01)
    with pytest.raises(ResumeRefused, match="(?s)lr: checkpoint has 0.03, you asked for 0.01.*--restart"):
        obtain(tiny_job(tmp_path / "m.pt", other), checkpointing=Checkpointing(on_other_state="refuse"))
    _, info = obtain(tiny_job(tmp_path / "m.pt", other), progress=False)  # a notebook: set aside, start over
    assert info["resumed_from"] is None and "training from step 0" in capsys.readouterr().out
    assert len(list(tmp_path.glob("m.train-state.replaced-*.pt"))) == 1


def test_provenance_of_the_helper_jobs_is_what_the_artifact_records(tmp_path):
    _, info = obtain(tiny_job(tmp_path / "m.pt"), progress=False)
    assert info["provenance"] == provenance_of(TinyConfig())


class SlowTrainer(SupervisedTrainer):
    def train_step(self, batch):
        import time
        time.sleep(0.05)
        return super().train_step(batch)


def test_two_runs_that_want_one_artifact_train_it_once(tmp_path, capsys):
    """The second waits on the artifact's lock while the first trains, then loads what it made."""
    import threading
    import time

    def slow_job():
        j = tiny_job(tmp_path / "m.pt")
        make_run = j.make_run

        def slow_run(dist):
            run = make_run(dist)
            run.trainer.__class__ = SlowTrainer
            return run
        return replace(j, make_run=slow_run)

    results = []
    first = threading.Thread(target=lambda: results.append(obtain(slow_job(), progress=False)[1]))
    first.start()
    while not (tmp_path / "m.pt.lock").exists():
        time.sleep(0.01)
    time.sleep(0.1)  # the first holds the lock and trains (12 steps of 50 ms)
    second = threading.Thread(target=lambda: results.append(obtain(slow_job(), progress=False)[1]))
    second.start()
    first.join(), second.join()
    # in either order: the waiting thread may record its load before the training thread records its run
    assert sorted(r["trained_now"] for r in results) == [False, True], "one trains, the other loads its result"
    assert results[0]["sha256"] == results[1]["sha256"]
    assert "another run is making tiny; waiting for it" in capsys.readouterr().err
