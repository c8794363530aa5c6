"""Layers that more than one paper's networks are built from."""
from __future__ import annotations

from torch import nn

__all__ = ["conv_bn_relu"]


def conv_bn_relu(c_in: int, c_out: int, k: int = 3, dilation: int = 1) -> nn.Sequential:
    """A k × k convolution (stride 1, 'same' zero padding, no bias: the norm has one), BatchNorm and
    ReLU: DeepLab's ASPP and decoder convolutions, DeepWarp's trunk (which keeps the resolution
    throughout, §3.2)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=dilation * (k // 2), dilation=dilation, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))
