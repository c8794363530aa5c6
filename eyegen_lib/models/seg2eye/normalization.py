"""The SPADE+Style block: ``(SPADE(x, mask) + Style(x, w)) / 2``.

* SPADE (content): parameter-free instance norm, then a shared 3×3 conv (hidden 128, ReLU) on
  the one-hot mask resized to x, and 3×3 convs to γ and β: ``norm(x)·(1+γ)+β``.
* Style (AdaIN-like): an FC layer from the style code w to 2C values (s, b): ``norm(x)·(1+s)+b``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SPADE", "StyleModulation", "SpadeStyleBlock"]


class SPADE(nn.Module):
    def __init__(self, channels: int, label_channels: int, hidden: int = 128):
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.shared = nn.Sequential(nn.Conv2d(label_channels, hidden, 3, padding=1), nn.ReLU())
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        segmap = F.interpolate(segmap, size=x.shape[-2:], mode="nearest")
        h = self.shared(segmap)
        return self.norm(x) * (1 + self.gamma(h)) + self.beta(h)


class StyleModulation(nn.Module):
    def __init__(self, channels: int, style_dim: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.fc = nn.Linear(style_dim, 2 * channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s, b = self.fc(w)[:, :, None, None].chunk(2, dim=1)
        return self.norm(x) * (1 + s) + b


class SpadeStyleBlock(nn.Module):
    """Average of SPADE (content) and style modulation; SPADE only when ``style_dim`` is None."""

    def __init__(self, channels: int, label_channels: int, hidden: int, style_dim: int | None):
        super().__init__()
        self.spade = SPADE(channels, label_channels, hidden)
        self.style = StyleModulation(channels, style_dim) if style_dim else None

    def forward(self, x, segmap, w=None):
        if self.style is None:
            return self.spade(x, segmap)
        return (self.spade(x, segmap) + self.style(x, w)) / 2
