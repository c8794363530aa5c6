import pytest
import torch

from eyegen_lib import PROFILES, choose_device, resolve_profile, seed_everything


def test_three_profiles_grow(monkeypatch):
    s, c, p = PROFILES["smoke"], PROFILES["cpu"], PROFILES["paper"]
    assert s.train_steps < c.train_steps < p.train_steps
    assert s.width_multiplier < c.width_multiplier <= p.width_multiplier == 1.0
    assert p.nir_size == (400, 640)  # OpenEDS native size
    assert p.patch_size == (64, 64)  # He et al.'s patches
    assert p.width(64) == 64 and s.width(64) == 8


def test_env_overrides_and_auto(monkeypatch):
    monkeypatch.setenv("EYEGEN_PROFILE", "cpu")
    assert resolve_profile("paper").name == "cpu"
    monkeypatch.delenv("EYEGEN_PROFILE")
    assert resolve_profile("auto").name == ("gpu" if torch.cuda.is_available() else "cpu")
    assert resolve_profile("smoke").name == "smoke"


def test_unknown_profile_is_explained(monkeypatch):
    monkeypatch.delenv("EYEGEN_PROFILE", raising=False)
    with pytest.raises(ValueError, match="choose one of"):
        resolve_profile("huge")
    monkeypatch.setenv("EYEGEN_PROFILE", "tiny")
    with pytest.raises(ValueError, match="EYEGEN_PROFILE"):
        resolve_profile("auto")


def test_seed_gives_same_numbers():
    import random

    import numpy as np

    seed_everything(123)
    a = (random.random(), np.random.rand(), torch.rand(3))
    seed_everything(123)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])


def test_device_choice(monkeypatch):
    monkeypatch.setenv("EYEGEN_DEVICE", "cpu")
    assert choose_device().type == "cpu"
    if not torch.cuda.is_available():
        monkeypatch.setenv("EYEGEN_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            choose_device()
