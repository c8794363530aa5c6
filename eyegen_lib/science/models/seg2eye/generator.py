"""Seg2Eye's generator: SPADE's generator with a style code modulating every normalisation.

3×3 conv from the downsampled one-hot mask to 16·ngf channels at 1/2**n_up of the image size;
SPADE+Style ResBlocks 16→16→16→16→8→4→2→1 ·ngf with nearest ×2 upsampling between;
LeakyReLU(0.2), 3×3 conv to 1 channel, tanh. ``use_style=False`` gives the plain GauGAN
baseline of Seg2Eye §5.2, which "starts from just a single downsampled style image": no style
branch, SPADE on the mask only, and the first conv reads the (first) style image downsampled to
the starting size instead of the mask.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from .config import Seg2EyeConfig
from .encoder import StyleEncoder
from .normalization import SpadeStyleBlock

__all__ = ["one_hot", "SpadeStyleResBlock", "Seg2EyeGenerator", "Seg2Eye"]


def one_hot(mask: torch.Tensor, n_classes: int = 4) -> torch.Tensor:
    """Labels (B, H, W) → one-hot float (B, n_classes, H, W)."""
    if mask.ndim != 3:
        raise ValueError(f"masks must be (B, H, W) labels, got shape {tuple(mask.shape)}")
    return F.one_hot(mask.long(), n_classes).permute(0, 3, 1, 2).float()


class SpadeStyleResBlock(nn.Module):
    """SPADE ResBlock with SPADE+Style norms: two (norm → LeakyReLU → 3×3 conv) and a learned
    shortcut (norm → 1×1 conv, no bias) when the width changes; spectral norm on the convs."""

    def __init__(self, c_in: int, c_out: int, label_channels: int, hidden: int, style_dim: int | None,
                 normalisation: str = "official"):
        super().__init__()
        mid = min(c_in, c_out)
        self.learned_shortcut = c_in != c_out
        self.norm_0 = SpadeStyleBlock(c_in, label_channels, hidden, style_dim, normalisation)
        self.conv_0 = spectral_norm(nn.Conv2d(c_in, mid, 3, padding=1))
        self.norm_1 = SpadeStyleBlock(mid, label_channels, hidden, style_dim, normalisation)
        self.conv_1 = spectral_norm(nn.Conv2d(mid, c_out, 3, padding=1))
        if self.learned_shortcut:
            self.norm_s = SpadeStyleBlock(c_in, label_channels, hidden, style_dim, normalisation)
            self.conv_s = spectral_norm(nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x, segmap, w=None):
        xs = self.conv_s(self.norm_s(x, segmap, w)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, segmap, w), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, segmap, w), 0.2))
        return xs + dx


class Seg2EyeGenerator(nn.Module):
    def __init__(self, config: Seg2EyeConfig):
        super().__init__()
        self.config = c = config
        style_dim = c.style_dim if c.use_style else None
        self.fc = nn.Conv2d(c.n_classes if c.use_style else 1, c.gen_channels[0][0], 3, padding=1)
        self.blocks = nn.ModuleList(SpadeStyleResBlock(a, b, c.n_classes, c.spade_hidden, style_dim, c.normalisation)
                                    for a, b in c.gen_channels)
        self.conv_img = nn.Conv2d(c.gen_channels[-1][1], 1, 3, padding=1)
        # exact sizes after each upsampling (image sizes not divisible by 2**n_up round up, then land exactly)
        h, w = c.image_size
        self.sizes = [(-(-h // 2 ** k), -(-w // 2 ** k)) for k in range(c.n_up, -1, -1)]

    def forward(self, mask: torch.Tensor, w: torch.Tensor | None = None, style_image: torch.Tensor | None = None):
        """mask (B, H, W) labels; ``w`` (B, style_dim) for Seg2Eye, ``style_image`` (B, 1, H, W) for GauGAN."""
        segmap = one_hot(mask, self.config.n_classes)
        if not self.config.use_style:
            if style_image is None:
                raise ValueError("the GauGAN baseline needs a style image")
            # antialiased: the start is a small thumbnail of the style image (5×8 px at cpu, 13×20 at paper)
            start = F.interpolate(style_image, size=self.sizes[0], mode="bilinear", align_corners=False, antialias=True)
        elif w is None:
            raise ValueError("Seg2Eye's generator needs a style code w")
        else:
            start = F.interpolate(segmap, size=self.sizes[0], mode="nearest")
        level = 0
        x = self.fc(start)
        for i, block in enumerate(self.blocks):
            x = block(x, segmap, w)
            if i in self.config.up_after:
                level += 1
                x = F.interpolate(x, size=self.sizes[level], mode="nearest")
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


class Seg2Eye(nn.Module):
    """Generator and style encoder together (the GauGAN baseline has no encoder).

    ``forward(mask, style)``: mask (B, H, W), K style images (B, K, 1, H, W) in [−1, 1] → (B, 1, H, W)."""

    def __init__(self, config: Seg2EyeConfig):
        super().__init__()
        self.config = config
        self.generator = Seg2EyeGenerator(config)
        self.encoder = (StyleEncoder(config.enc_channels, config.style_dim, aggregation=config.aggregation)
                        if config.use_style else None)

    def encode(self, style: torch.Tensor):
        """Aggregated (w, features) of K style images (B, K, 1, H, W)."""
        if self.encoder is None:
            raise ValueError("the GauGAN baseline has no style encoder")
        return self.encoder(style)

    def forward(self, mask: torch.Tensor, style: torch.Tensor | None = None, *, w: torch.Tensor | None = None,
                return_style: bool = False):
        """The generated images; with ``return_style`` (training) also the aggregated code and the
        encoder's features of the style images (None, None for the GauGAN baseline)."""
        feats = None
        if not self.config.use_style:
            first = style[:, 0] if style.ndim == 5 else style
            fake = self.generator(mask, style_image=first)
        else:
            if w is None:
                w, feats = self.encode(style)
            fake = self.generator(mask, w)
        return (fake, w, feats) if return_style else fake
