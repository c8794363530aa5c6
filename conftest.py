"""Test-wide environment, set before any notebook kernel starts (kernels inherit it).

* ``EYEGEN_PROFILE=smoke`` — nbval and the papermill harness run the CI-sized profile;
* ``EYEGEN_WEIGHTS_DIR`` — the offline ImageNet backbones in ``../shared/weights`` (if not set);
* ``EYEGEN_OUTPUT_DIR`` — a throw-away folder, so tests never touch ``outputs/``;
* ``EYEGEN_OFFLINE=1`` — never try a download in a test;
* ``EYEGEN_PRECISION=fp32`` — thresholds are measured in fp32 (bf16 is compared in test_precision.py).
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
# fp32 everywhere unless a test asks for bf16: "auto" would pick bf16 on AMX machines and move the
# numerics thresholds, which are measured in fp32 (tests/test_precision.py compares the two)
os.environ.setdefault("EYEGEN_PRECISION", "fp32")
# Two threads at most (CI has two cores); an explicit OMP_NUM_THREADS (e.g. 1 while other jobs share
# the cores, where spinning OpenMP barriers slow everything down) wins.
torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1))))


def pytest_collection_modifyitems(config, items):
    # the paper-shape dry run takes many minutes: only when asked for (pytest -m paper_check)
    if "paper_check" not in (config.getoption("markexpr") or ""):
        skip_check = pytest.mark.skip(reason="the paper-shape dry run: select it with -m paper_check")
        for item in items:
            if "paper_check" in item.keywords:
                item.add_marker(skip_check)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (runs the paper profile)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# -- numerics-sensitive tests ----------------------------------------------------------------------
# Tests whose outcome depends on a short training or on float details are marked ``numerics``. They
# draw their seed from $EYEGEN_TEST_SEED (default 0) and state each threshold through ``margin``,
# which asserts it and, when $EYEGEN_NUMERICS_LOG names a file, appends the measured ratio to it:
# benchmarks/numerics_spread.py runs the subset over seeds and CPU kernel choices (oneDNN ISA,
# ATen capability) and prints the spread each threshold has to hold across.
@pytest.fixture
def numerics_seed() -> int:
    return int(os.environ.get("EYEGEN_TEST_SEED", "0"))


class Margin:
    def __init__(self, test_id: str):
        self.test_id = test_id

    def below(self, name: str, value: float, limit: float) -> None:
        """Assert ``value < limit``; log value / limit (the margin: below 1 passes)."""
        value, limit = float(value), float(limit)
        log = os.environ.get("EYEGEN_NUMERICS_LOG")
        if log:
            import json

            with open(log, "a") as f:
                f.write(json.dumps({"test": self.test_id, "check": name, "value": value, "limit": limit,
                                    "ratio": value / limit if limit else float("inf"),
                                    "seed": int(os.environ.get("EYEGEN_TEST_SEED", "0")),
                                    "isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "default"),
                                    "aten": os.environ.get("ATEN_CPU_CAPABILITY", "default")}) + "\n")
        assert value < limit, f"{name}: {value:.4g} is not below {limit:.4g}"

    def above(self, name: str, value: float, limit: float) -> None:
        """Assert ``value > limit`` (logged as limit / value, below 1 passes)."""
        self.below(name + " (inverted)", float(limit), float(value))


@pytest.fixture
def margin(request) -> Margin:
    return Margin(request.node.nodeid)
