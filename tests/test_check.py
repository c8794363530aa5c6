"""eyegen check: every model family built, trained two iterations and evaluated at a profile's shapes."""
import pytest

from eyegen_lib import get_profile
from eyegen_lib.suite.check import check_family, checked_families, format_table, run_check


def test_a_family_is_measured_and_a_smaller_measured_batch_scales_its_flops():
    smoke = get_profile("smoke")
    full = check_family("segmenter", smoke)
    assert full["params_M"] > 0 and full["s_per_iteration"] > 0 and full["peak_rss_GiB"] > 0.1
    assert full["eval_output"] == [8, 40, 64] and full["batch"] == full["measured_batch"] == 8
    half = check_family("segmenter", smoke, max_batch=4)
    assert half["measured_batch"] == 4 and half["batch"] == 8
    assert half["GFLOP_per_iteration"] == pytest.approx(full["GFLOP_per_iteration"], rel=0.05)  # scaled to batch 8
    table = format_table([full, {"model": "seg2eye", "notebook": "04", "error": "RuntimeError: boom"}])
    assert "| segmenter | 02 |" in table and "failed: RuntimeError: boom" in table


@pytest.mark.paper_check
def test_every_model_runs_at_paper_shapes():
    rows = run_check("paper", max_batch=4, echo=lambda text: None)
    assert [r["model"] for r in rows] == checked_families() == ["segmenter", "refiner", "seg2eye", "deepwarp", "gaze_gan",
                                                                "gaze_estimator"]
    failed = [f"{r['model']}: {r['error']}" for r in rows if "error" in r]
    assert not failed, failed
    assert all(r["GFLOP_per_iteration"] > 0 and r["gpu_hours_h100"] > 0 for r in rows)
