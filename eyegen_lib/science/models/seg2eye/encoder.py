"""The style encoder: each of K style images is encoded separately; codes and features are then
aggregated over the K by element-wise max (the paper) or mean (ablation)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import spectral_norm

__all__ = ["StyleEncoder", "aggregate"]


def aggregate(x: torch.Tensor, how: str = "max", dim: int = 1) -> torch.Tensor:
    """Element-wise max (or mean) over the K style images (dimension ``dim``)."""
    if how == "max":
        return x.amax(dim)
    if how == "mean":
        return x.mean(dim)
    raise ValueError(f"aggregation must be 'max' or 'mean', got {how!r}")


class StyleEncoder(nn.Module):
    """3×3 stride-2 convs (spectral norm + instance norm + LeakyReLU), global average pool, FC to w."""

    def __init__(self, channels=(64, 128, 256, 512, 512, 512), style_dim: int = 16, in_channels: int = 1,
                 aggregation: str = "max"):
        super().__init__()
        self.aggregation = aggregation
        layers, c_in = [], in_channels
        for c in channels:
            layers.append(nn.Sequential(spectral_norm(nn.Conv2d(c_in, c, 3, stride=2, padding=1)),
                                        nn.InstanceNorm2d(c, affine=False), nn.LeakyReLU(0.2)))
            c_in = c
        self.layers = nn.ModuleList(layers)
        self.fc = nn.Linear(c_in, style_dim)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One code per image: images (B, C, H, W) → (w (B, D), [features per layer])."""
        feats, h = [], images
        for layer in self.layers:
            h = layer(h)
            feats.append(h)
        return self.fc(h.mean((2, 3))), feats

    def forward(self, style: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """K style images (B, K, C, H, W) → aggregated (w (B, D), [features (B, C_l, H_l, W_l)])."""
        if style.ndim == 4:
            style = style[:, None]
        b, k = style.shape[:2]
        w, feats = self.encode(style.flatten(0, 1))
        w = aggregate(w.view(b, k, -1), self.aggregation)
        feats = [aggregate(f.view(b, k, *f.shape[1:]), self.aggregation) for f in feats]
        return w, feats
