"""Test-wide environment, set before any notebook kernel starts (kernels inherit it).

* ``EYEGEN_PROFILE=smoke`` — nbval and the papermill harness run the CI-sized profile;
* ``EYEGEN_WEIGHTS_DIR`` — the offline ImageNet backbones in ``../shared/weights`` (if not set);
* ``EYEGEN_OUTPUT_DIR`` — a throw-away folder, so tests never touch ``outputs/``;
* ``EYEGEN_OFFLINE=1`` — never try a download in a test.
"""
import os
import tempfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent
os.environ["EYEGEN_PROFILE"] = "smoke"
os.environ.setdefault("EYEGEN_WEIGHTS_DIR", str(ROOT.parent / "shared" / "weights"))
os.environ.setdefault("EYEGEN_OUTPUT_DIR", tempfile.mkdtemp(prefix="eyegen-test-outputs-"))
os.environ.setdefault("EYEGEN_OFFLINE", "1")
# Two threads at most (CI has two cores); an explicit OMP_NUM_THREADS (e.g. 1 while other jobs share
# the cores, where spinning OpenMP barriers slow everything down) wins.
torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1))))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (runs the paper profile)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
