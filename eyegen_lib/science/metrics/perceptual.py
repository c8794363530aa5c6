"""LPIPS (Zhang et al. 2018) with the AlexNet backbone and v0.1 linear layers, fully offline.

The ``lpips`` package ships its linear calibration layers; its AlexNet backbone normally comes
from torchvision's download. We build it with a random backbone (``pnet_rand=True``, which
downloads nothing) and copy in the ImageNet weights from :mod:`eyegen_lib.science.backbones`.
"""
from __future__ import annotations

import warnings
from functools import lru_cache

import lpips
import torch
from torch import nn

from ..backbones import backbone_features_state_dict

__all__ = ["LPIPS", "lpips_distance"]

# lpips' AlexNet slices cover torchvision features [0,2) [2,5) [5,8) [8,10) [10,12); child names
# inside each slice are the torchvision indices, so "3.weight" lives in slice2 under the name "3".


class LPIPS(nn.Module):
    """LPIPS distance, AlexNet v0.1. Inputs: (B, C, H, W) in [-1, 1], C = 1 (grey, repeated) or 3.

    Returns one distance per image pair, shape (B,). Identical images give exactly 0.
    """

    def __init__(self):
        super().__init__()
        with warnings.catch_warnings():  # lpips still passes torchvision the old `pretrained=` flag
            warnings.simplefilter("ignore", UserWarning)
            self.net = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
        state, self.source = backbone_features_state_dict("alexnet")
        with torch.no_grad():
            for slice_ in (self.net.net.slice1, self.net.net.slice2, self.net.net.slice3, self.net.net.slice4, self.net.net.slice5):
                for idx, layer in slice_.named_children():
                    if isinstance(layer, nn.Conv2d):
                        layer.weight.copy_(state[f"{idx}.weight"])
                        layer.bias.copy_(state[f"{idx}.bias"])
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def _check(x: torch.Tensor, name: str) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"LPIPS expects (B, 1 or 3, H, W) images, got {name} of shape {tuple(x.shape)}")
        if not torch.is_floating_point(x):
            raise TypeError(f"LPIPS expects float images in [-1, 1]; {name} is {x.dtype} (convert uint8 with x / 127.5 - 1)")
        lo, hi = float(x.min()), float(x.max())
        if lo < -1.01 or hi > 1.01:
            raise ValueError(f"LPIPS expects images in [-1, 1]; {name} spans [{lo:.3g}, {hi:.3g}] (0..1 images: 2x-1; 0..255: x/127.5-1)")
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape:
            raise ValueError(f"LPIPS compares images of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
        a, b = self._check(a, "a"), self._check(b, "b")
        return self.net(a, b).flatten()


@lru_cache(maxsize=2)
def _model(device: str) -> LPIPS:
    return LPIPS().to(device)


@torch.no_grad()
def lpips_distance(a: torch.Tensor, b: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """LPIPS between image batches a and b in [-1, 1] (one value per pair, on CPU), batched."""
    model = _model(str(a.device))
    return torch.cat([model(a[i:i + batch_size], b[i:i + batch_size]).cpu() for i in range(0, len(a), batch_size)])
