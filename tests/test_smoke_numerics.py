"""The notebooks' smoke expectations that rest on a short training, checked where they are made
(the registry's models at ``smoke``) so they can run over seeds and CPU kernels
(benchmarks/numerics_spread.py) without running whole notebooks."""
import pytest

from eyegen_lib import get_profile
from eyegen_lib.runs import registry

smoke = get_profile("smoke")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """One output folder for this module: the smoke gaze estimator is trained once per seed."""
    with pytest.MonkeyPatch.context() as mp:
        out = tmp_path_factory.mktemp("smoke-numerics")
        mp.setenv("EYEGEN_OUTPUT_DIR", str(out))
        yield out


@pytest.mark.slow
@pytest.mark.numerics
def test_the_smoke_gaze_estimator_beats_the_mean_predictor_on_held_out_persons(outputs, numerics_seed, margin):
    """07_evaluation's floor of the gaze-error metric (tests/notebook_expectations.py, check_07)."""
    from .notebook_expectations import GAZE_FLOOR_OVER_MEAN_PREDICTOR

    _, info = registry.gaze_estimator(smoke, seed=numerics_seed, progress=False)
    m = info["metrics"]
    margin.below("test error / mean predictor's error", m["test_error_deg"] / m["mean_predictor_error_deg"],
                 GAZE_FLOOR_OVER_MEAN_PREDICTOR)


@pytest.mark.slow
@pytest.mark.numerics
def test_the_smoke_segmenter_finds_the_eye(outputs, numerics_seed, margin):
    """02_ranking's segmenter at smoke (check_02: mIoU above 0.3)."""
    _, info = registry.segmenter(smoke, seed=numerics_seed, progress=False)
    margin.above("held-out mIoU", info["metrics"]["miou"], 0.3)


@pytest.mark.slow
@pytest.mark.numerics
def test_the_smoke_gaze_estimator_tells_a_copied_input_from_the_target_gaze(outputs, numerics_seed, margin):
    """07_evaluation (check_07): copying the input must not look redirected — its gaze error is
    well above that of the same person's real image at the target gaze."""
    from eyegen_lib.core.gaze import angular_error_deg
    from eyegen_lib.core.images import to_signed
    from eyegen_lib.science.baselines import nearest_same_person_baseline
    from eyegen_lib.science.models.gaze_estimator import predict_gaze
    from eyegen_lib.science.protocols import redirection_protocol

    estimator, _ = registry.gaze_estimator(smoke, seed=numerics_seed, progress=False)
    source, rset, eyes = redirection_protocol(smoke, seed=numerics_seed)

    def gaze_error(images):
        return float(angular_error_deg(predict_gaze(estimator, to_signed(images)).double(), rset.target_gaze.double()).mean())

    copy, nearest = gaze_error(rset.source), gaze_error(nearest_same_person_baseline(source, rset, eyes))
    margin.above("copy's gaze error - nearest's (deg)", copy - nearest, 3.0)


@pytest.mark.slow
@pytest.mark.numerics
def test_the_smoke_deepwarp_is_not_much_worse_than_copying_the_input(numerics_seed, margin):
    """05_deepwarp (check_05): a smoke-trained CFW+LCM warp, which starts as the identity, stays
    below 2 × the unchanged input's MSE on held-out persons."""
    from eyegen_lib.science.models.deepwarp import DeepWarpConfig, redirect, render_redirection_pairs, train_deepwarp
    from eyegen_lib.science.protocols import person_split, rgb_source, split_indices

    from .notebook_expectations import DEEPWARP_OVER_UNCHANGED_INPUT

    config = DeepWarpConfig.for_profile(smoke, variant="cfw_lcm")
    source = rgb_source(smoke, size=config.image_size, seed=numerics_seed)
    idx = split_indices(source, person_split(smoke, seed=numerics_seed))
    train = render_redirection_pairs(source, idx["train"], seed=numerics_seed, progress=False)
    test = render_redirection_pairs(source, idx["test"], seed=numerics_seed + 1, progress=False)
    model, _ = train_deepwarp(train, config, seed=numerics_seed, progress=False)
    pred = redirect(model, test["source"], test["landmarks"], (test["target_gaze"] - test["source_gaze"]).float())

    def mse(images):
        return float((images.float() - test["target"].float()).pow(2).mean())

    margin.below("MSE / MSE of the unchanged input", mse(pred) / mse(test["source"]), DEEPWARP_OVER_UNCHANGED_INPUT)
