"""The SPADE+Style block: ``(SPADE(x, mask) + Style(x, w)) / 2``, in two forms.

* ``"official"`` (default; the authors' code, ``--norm_G spectralspadebatch3x3``): SPADE's
  parameter-free norm is **BatchNorm** (SyncBatchNorm under multi-GPU DDP, as in their final run),
  ``BN(x)·(1+γ)+β``; the style branch (their ``ApplyStyle``) modulates the **un-normalised** x,
  ``x·(1+s)+b``, with (s, b) from a linear layer (He init, gain 1) followed by LeakyReLU(0.2).
* ``"paper"`` (the paper's text: "AdaIN"): instance norm, and the style branch modulates the
  normalised x with (s, b) from a plain linear layer: ``IN(x)·(1+s)+b``.

Either way a block normalises x once and both branches share it (SPADE always, the style branch
in the paper form). γ, β come from a shared 3×3 conv (hidden 128, ReLU) on the one-hot mask resized
to x, then 3×3 convs.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SPADE", "StyleModulation", "SpadeStyleBlock", "NORMALISATIONS", "parameter_free_norm"]

NORMALISATIONS = ("official", "paper")


def parameter_free_norm(channels: int, normalisation: str) -> nn.Module:
    """BatchNorm (official) or InstanceNorm (paper text), without affine parameters."""
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
    if normalisation == "official":
        return nn.BatchNorm2d(channels, affine=False)
    return nn.InstanceNorm2d(channels, affine=False)


class SPADE(nn.Module):
    """γ, β from the mask; ``forward(normed_x, segmap)`` modulates an already normalised x."""

    def __init__(self, channels: int, label_channels: int, hidden: int = 128):
        super().__init__()
        self.shared = nn.Sequential(nn.Conv2d(label_channels, hidden, 3, padding=1), nn.ReLU())
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, normed: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        segmap = F.interpolate(segmap, size=normed.shape[-2:], mode="nearest")
        h = self.shared(segmap)
        return normed * (1 + self.gamma(h)) + self.beta(h)


class StyleModulation(nn.Module):
    """``x·(1+s)+b`` with (s, b) = fc(w) — followed by LeakyReLU(0.2) in the official form."""

    def __init__(self, channels: int, style_dim: int, *, official: bool = True):
        super().__init__()
        self.official = official
        self.fc = nn.Linear(style_dim, 2 * channels)
        if official:  # ApplyStyle's FC: He init with gain 1, zero bias
            nn.init.normal_(self.fc.weight, std=1 / math.sqrt(style_dim))
            nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.fc(w)
        if self.official:
            style = F.leaky_relu(style, 0.2)
        s, b = style[:, :, None, None].chunk(2, dim=1)
        return x * (1 + s) + b


class SpadeStyleBlock(nn.Module):
    """Average of SPADE (content) and style modulation; SPADE only when ``style_dim`` is None."""

    def __init__(self, channels: int, label_channels: int, hidden: int, style_dim: int | None,
                 normalisation: str = "official"):
        super().__init__()
        self.normalisation = normalisation
        self.norm = parameter_free_norm(channels, normalisation)  # one per block, shared by both branches
        self.spade = SPADE(channels, label_channels, hidden)
        self.style = StyleModulation(channels, style_dim, official=normalisation == "official") if style_dim else None

    def forward(self, x, segmap, w=None):
        normed = self.norm(x)
        content = self.spade(normed, segmap)
        if self.style is None:
            return content
        # official: the style acts on the raw x; paper: on the same normalised x as SPADE
        return (content + self.style(x if self.normalisation == "official" else normed, w)) / 2
