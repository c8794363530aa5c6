"""ImageNet AlexNet / VGG-16 convolutional weights, found without a network when possible.

Sources, in order:
1. torchvision's own cache (``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth`` …);
2. ``$EYEGEN_WEIGHTS_DIR/{alexnet,vgg16}_features.pth`` — features-only state dicts in torchvision's
   key layout (``features.N.weight``), as shipped beside this project in ``shared/weights``; when the
   variable is unset, ``<checkout>/weights/`` and ``<checkout>/../shared/weights/`` are looked in;
3. torchvision's normal download (skipped when ``$EYEGEN_OFFLINE=1``);
4. otherwise :class:`BackboneWeightsNotFound`, saying exactly which file to put where.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torchvision
from torch import nn

from ..core.paths import project_root

__all__ = ["BackboneWeightsNotFound", "backbone_features_state_dict", "load_backbone_features", "weights_status"]


@dataclass(frozen=True)
class _Backbone:
    features_file: str  # our features-only file in $EYEGEN_WEIGHTS_DIR
    torchvision_file: str  # torchvision's full checkpoint in its hub cache
    build: object
    weights_enum: str


_BACKBONES = {
    "alexnet": _Backbone("alexnet_features.pth", "alexnet-owt-7be5be79.pth", torchvision.models.alexnet, "AlexNet_Weights"),
    "vgg16": _Backbone("vgg16_features.pth", "vgg16-397923af.pth", torchvision.models.vgg16, "VGG16_Weights"),
}


class BackboneWeightsNotFound(FileNotFoundError):
    pass


def _features_only(state: dict) -> dict:
    return {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}


def _candidates(name: str) -> list[tuple[str, Path]]:
    spec = _BACKBONES[name]
    out = [("torchvision cache", Path(torch.hub.get_dir()) / "checkpoints" / spec.torchvision_file)]
    if os.environ.get("EYEGEN_WEIGHTS_DIR"):
        out.append(("EYEGEN_WEIGHTS_DIR", Path(os.environ["EYEGEN_WEIGHTS_DIR"]).expanduser() / spec.features_file))
    elif project_root() is not None:
        root = project_root()
        out += [("checkout weights/", root / "weights" / spec.features_file),
                ("../shared/weights", root.parent / "shared" / "weights" / spec.features_file)]
    return out


def backbone_features_state_dict(name: str) -> tuple[dict[str, torch.Tensor], str]:
    """The ``features`` state dict of an ImageNet backbone (keys ``"0.weight"`` …) and where it came from."""
    if name not in _BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(_BACKBONES)}")
    spec = _BACKBONES[name]
    for source, path in _candidates(name):
        if path.is_file():
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise BackboneWeightsNotFound(f"{path} ({source}) exists but cannot be read ({exc}); replace it with a good copy") from exc
            features = _features_only(state)
            if not features:
                raise BackboneWeightsNotFound(f"{path} has no 'features.*' weights; it is not a torchvision {name} state dict")
            return features, f"{source}: {path}"
    if os.environ.get("EYEGEN_OFFLINE", "") not in ("1", "true", "yes"):
        try:
            weights = getattr(torchvision.models, spec.weights_enum).IMAGENET1K_V1
            return _features_only(weights.get_state_dict(progress=False)), "torchvision download"
        except Exception:  # no network, proxy, …: fall through to the explanation below
            pass
    raise BackboneWeightsNotFound(
        f"ImageNet {name} weights were not found and could not be downloaded. Either put the features-only file "
        f"'{spec.features_file}' (see shared/weights/README.md) in a folder and set EYEGEN_WEIGHTS_DIR to that folder "
        f"(the tests use ../shared/weights when it exists; the GitHub workflow downloads torchvision's files), or put torchvision's '{spec.torchvision_file}' in "
        f"{Path(torch.hub.get_dir()) / 'checkpoints'}."
    )


@lru_cache(maxsize=4)
def _cached_state(name: str) -> tuple[tuple[str, torch.Tensor], ...]:
    state, _ = backbone_features_state_dict(name)
    return tuple(state.items())


def load_backbone_features(name: str) -> nn.Sequential:
    """torchvision's ``alexnet().features`` / ``vgg16().features`` with ImageNet weights, frozen, in eval mode."""
    features = _BACKBONES[name].build(weights=None).features if name in _BACKBONES else None
    if features is None:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(_BACKBONES)}")
    features.load_state_dict(dict(_cached_state(name)))
    features.requires_grad_(False)
    return features.eval()


def weights_status() -> dict[str, str]:
    """For the setup notebook: where each backbone would be loaded from, without downloading."""
    status = {}
    for name in _BACKBONES:
        found = [f"{src}: {p}" for src, p in _candidates(name) if p.is_file()]
        status[name] = found[0] if found else "not found locally (would try torchvision's download)"
    return status
