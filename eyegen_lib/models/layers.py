"""Layers that more than one paper's networks are built from."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["conv_bn_relu", "warp"]


def conv_bn_relu(c_in: int, c_out: int, k: int = 3, dilation: int = 1) -> nn.Sequential:
    """A k × k convolution (stride 1, 'same' zero padding, no bias: the norm has one), BatchNorm and
    ReLU: DeepLab's ASPP and decoder convolutions, DeepWarp's trunk (which keeps the resolution
    throughout, §3.2)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=dilation * (k // 2), dilation=dilation, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warping (DeepWarp's eq. 2): ``out(x, y) = image(x + flow_x, y + flow_y)``, bilinear, border
    pixels repeated outside the crop. ``flow`` (B, 2, H, W) is in pixels. With ``align_corners=True`` the
    normalised coordinate −1 is the centre of pixel 0 and +1 that of pixel W − 1, so a pixel is
    2 / (W − 1) normalised units; a zero flow samples every pixel at its own centre (identity).
    DeepWarp's networks and the gaze GAN's warping generator share it."""
    B, _, H, W = image.shape
    ys = torch.arange(H, device=image.device, dtype=image.dtype)[:, None]
    xs = torch.arange(W, device=image.device, dtype=image.dtype)[None, :]
    gx = (xs + flow[:, 0]) * (2 / max(W - 1, 1)) - 1
    gy = (ys + flow[:, 1]) * (2 / max(H - 1, 1)) - 1
    return F.grid_sample(image, torch.stack([gx, gy], -1), mode="bilinear", padding_mode="border",
                         align_corners=True)
