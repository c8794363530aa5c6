"""The training loop runs unchanged under torchrun: two CPU processes (gloo) stay identical and
equal a single process that trains on both ranks' batches in one batch."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from eyegen_lib.core.training import SupervisedTrainer
from eyegen_lib.science.batches import EpochBatches

WORKER = Path(__file__).with_name("ddp_worker.py")


def _run(args, tmp_path, **env):
    full_env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    full_env.update(env)
    proc = subprocess.run(args, cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow
def test_two_cpu_replicas_stay_identical(tmp_path):
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
          str(WORKER), str(tmp_path)], tmp_path, OMP_NUM_THREADS="1")
    _run([sys.executable, str(WORKER), str(tmp_path)], tmp_path)
    r0 = torch.load(tmp_path / "rank0_of2.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1_of2.pt", weights_only=True)
    single = torch.load(tmp_path / "rank0_of1.pt", weights_only=True)
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), f"replicas diverged at {k}"
        # DDP averages the two shards' gradients: the same step as one batch holding both shards
        torch.testing.assert_close(r0["state"][k], single["state"][k], rtol=1e-4, atol=1e-5)
    # logged losses are averaged over ranks, so both ranks log the same numbers
    assert r0["history"] == r1["history"]
    assert r0["history"][-1]["loss"] < r0["history"][0]["loss"]


@pytest.mark.numerics
def test_supervised_trainer_reduces_loss_and_checkpoints(tmp_path, numerics_seed, margin):
    torch.manual_seed(numerics_seed)
    x = torch.randn(128, 5)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0], [3.0]])
    model = nn.Linear(5, 1)
    trainer = SupervisedTrainer(model, torch.optim.Adam(model.parameters(), lr=0.05), nn.functional.mse_loss, device="cpu")
    logged = []
    history = trainer.fit(EpochBatches((x, y), 16), steps=120, log_every=10, progress=False,
                          on_log=lambda step, losses: logged.append(step))
    margin.below("loss last / first", history[-1]["loss"] / history[0]["loss"], 0.05)
    assert logged == list(range(10, 121, 10))
    fresh = nn.Linear(5, 1)
    other = SupervisedTrainer(fresh, torch.optim.Adam(fresh.parameters(), lr=0.05), nn.functional.mse_loss, device="cpu")
    other.load_state_dict(trainer.state_dict())  # the training state carries everything but the process RNGs
    assert other.step == 120 and other.history == history
    assert torch.equal(other.module("model").weight, model.weight)
    assert other.optimizers["model"].state_dict()["state"][0]["step"] == 120


def test_empty_data_is_explained():
    with pytest.raises(ValueError, match="no batch"):
        EpochBatches((torch.zeros(3, 2), torch.zeros(3, 1)), batch_size=8)
