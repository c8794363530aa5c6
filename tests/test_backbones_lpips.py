"""Offline ImageNet backbones and LPIPS (AlexNet, v0.1) — no network in any of these tests."""
import pytest
import torch

from eyegen_lib.science.backbones import BackboneWeightsNotFound, backbone_features_state_dict, load_backbone_features
from eyegen_lib.science.metrics import LPIPS, lpips_distance


def test_backbones_load_from_weights_dir():
    for name, n_convs in (("alexnet", 5), ("vgg16", 13)):
        state, source = backbone_features_state_dict(name)
        assert "EYEGEN_WEIGHTS_DIR" in source or "cache" in source
        assert sum(k.endswith(".weight") for k in state) == n_convs
    features = load_backbone_features("alexnet")
    assert not any(p.requires_grad for p in features.parameters())
    # ImageNet conv1 filters are structured, not the ~N(0, small) of a fresh init
    assert features[0].weight.std() > 0.05


def test_missing_weights_say_what_to_put_where(monkeypatch, tmp_path):
    monkeypatch.setenv("EYEGEN_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("EYEGEN_OFFLINE", "1")
    with pytest.raises(BackboneWeightsNotFound) as err:
        backbone_features_state_dict("vgg16")
    msg = str(err.value)
    assert "vgg16_features.pth" in msg and "EYEGEN_WEIGHTS_DIR" in msg and "vgg16-397923af.pth" in msg


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    # smooth random images (upsampled noise) look more like photos than white noise
    base = torch.rand(6, 3, 16, 16, generator=g)
    return torch.nn.functional.interpolate(base, size=64, mode="bilinear", align_corners=False) * 2 - 1


def test_lpips_of_image_with_itself_is_zero(images):
    d = lpips_distance(images, images)
    assert d.shape == (6,)
    assert torch.all(d.abs() < 1e-6)


def test_lpips_grows_with_noise(images):
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(images.shape, generator=g)
    dists = [lpips_distance(images, (images + s * noise).clamp(-1, 1)).mean().item() for s in (0.02, 0.1, 0.3, 0.6)]
    assert all(a < b for a, b in zip(dists, dists[1:])), dists
    assert dists[0] > 0


def test_lpips_uses_imagenet_backbone_not_random(images):
    # a random AlexNet gives much smaller, uncalibrated distances; the ImageNet one is what the
    # linear layers were calibrated on. Check the backbone really is the file's weights.
    model = LPIPS()
    state, _ = backbone_features_state_dict("alexnet")
    assert torch.equal(getattr(model.net.net.slice1, "0").weight, state["0.weight"])
    assert torch.equal(getattr(model.net.net.slice5, "10").weight, state["10.weight"])


def test_lpips_grey_and_bad_ranges(images):
    grey = images[:, :1]
    d = lpips_distance(grey, grey.flip(-1))
    assert d.shape == (6,) and torch.all(d > 0)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        lpips_distance(images * 127.5 + 127.5, images)
    with pytest.raises(TypeError, match="uint8"):
        lpips_distance(torch.zeros(1, 3, 64, 64, dtype=torch.uint8), torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
