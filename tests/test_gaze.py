"""Pins the project's one gaze convention (see eyegen_lib/core/gaze.py)."""
import math

import numpy as np
import pytest
import torch

from eyegen_lib.core.gaze import angular_error_deg, eye_to_target_to_pitchyaw, pitchyaw_to_vector, vector_to_pitchyaw


def test_zero_gaze_looks_into_camera():
    np.testing.assert_allclose(pitchyaw_to_vector(np.array([0.0, 0.0])), [0, 0, 1], atol=1e-12)


def test_signs_of_pitch_and_yaw():
    up = pitchyaw_to_vector(np.array([0.3, 0.0]))
    assert up[1] > 0  # positive pitch has a positive y component: looking up
    left = pitchyaw_to_vector(np.array([0.0, 0.3]))
    assert left[0] > 0  # positive yaw: x component positive


def test_mpiigaze_formula_matches_design():
    # MPIIGaze eye→target vector g: pitch = arcsin(-g_y), yaw = arctan2(-g_x, -g_z)
    g = np.array([0.2, -0.3, -0.9])
    g = g / np.linalg.norm(g)
    p, y = eye_to_target_to_pitchyaw(g)
    assert p == pytest.approx(math.asin(-g[1]))
    assert y == pytest.approx(math.atan2(-g[0], -g[2]))
    assert p > 0  # g_y < 0 (up in image coordinates) is positive pitch


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_roundtrip(lib):
    rng = np.random.default_rng(0)
    py = rng.uniform([-1.2, -2.5], [1.2, 2.5], size=(100, 2))
    x = torch.tensor(py) if lib == "torch" else py
    back = vector_to_pitchyaw(pitchyaw_to_vector(x))
    np.testing.assert_allclose(np.asarray(back), py, atol=1e-9)


def test_angular_error_known_pairs():
    # pure yaw difference of 10° at zero pitch is exactly 10°
    a = np.radians([[0.0, 0.0], [0.0, 5.0], [10.0, 0.0]])
    b = np.radians([[0.0, 10.0], [0.0, -5.0], [-10.0, 0.0]])
    np.testing.assert_allclose(angular_error_deg(a, b), [10.0, 10.0, 20.0], atol=1e-9)
    # vectors of any length, and both sign conventions of the same physical direction agree
    v = np.array([[1.0, 0, 0], [0, 0, 2.0]])
    w = np.array([[0, 3.0, 0], [0, 0, -1.0]])
    np.testing.assert_allclose(angular_error_deg(v, w), [90.0, 180.0])
    g = np.array([[0.1, -0.2, -1.0]])  # eye→target convention
    assert angular_error_deg(eye_to_target_to_pitchyaw(g), -g)[0] == pytest.approx(0.0, abs=1e-6)
    t = angular_error_deg(torch.tensor(a), torch.tensor(b))
    np.testing.assert_allclose(t.numpy(), [10.0, 10.0, 20.0], atol=1e-6)


def test_angular_error_rejects_bad_shapes():
    with pytest.raises(ValueError, match="pitch/yaw"):
        angular_error_deg(np.zeros((3, 4)), np.zeros((3, 4)))


def test_gaze_predictions_are_plain_numbers_without_a_graph():
    """predict_gaze runs without autograd: its output goes straight into plots and numpy (07, 08)."""
    import torch

    from eyegen_lib.science.models.gaze_estimator import GazeEstimator, GazeEstimatorConfig, predict_gaze

    model = GazeEstimator(GazeEstimatorConfig(widths=(4, 8), hidden=8))
    pred = predict_gaze(model, torch.zeros(3, 3, 32, 32))
    assert pred.shape == (3, 2) and not pred.requires_grad and pred.numpy().shape == (3, 2)
