"""Tests marked ``gpu`` run the ``paper`` profile on CUDA; without a GPU they are skipped."""
from pathlib import Path

import pytest
import torch

from eyegen_lib.runs.record import read_metrics
from eyegen_lib.suite.runner import run_notebook

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.gpu
def test_setup_notebook_sees_the_gpu_in_paper_profile(tmp_path):
    run_notebook(ROOT / "notebooks" / "00_setup.ipynb", "paper", tmp_path)
    data = read_metrics("00_setup", out=tmp_path)
    assert data["profile"] == "paper" and data["metrics"]["cuda_available"]["value"] is True


@pytest.mark.gpu
def test_lpips_on_gpu_matches_cpu():
    from eyegen_lib.science.metrics import lpips_distance

    a = torch.rand(4, 3, 64, 64) * 2 - 1
    b = (a + 0.2 * torch.randn_like(a)).clamp(-1, 1)
    torch.testing.assert_close(lpips_distance(a.cuda(), b.cuda()), lpips_distance(a, b), rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
def test_every_model_trains_at_full_paper_batches_on_the_gpu():
    from eyegen_lib.suite.check import run_check

    rows = run_check("paper", echo=lambda text: None)  # no --max-batch: the papers' batches
    assert not [r for r in rows if "error" in r], rows
    assert all(r["measured_batch"] == r["batch"] and r["precision"] == "bf16" for r in rows)
