"""The two image conventions every model converts between: uint8 0..255 on disk and in results,
float [−1, 1] inside the networks."""
from __future__ import annotations

import torch

__all__ = ["to_signed", "to_uint8"]


def to_signed(images: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 → float [-1, 1] (floats pass through)."""
    return images.float() / 127.5 - 1 if images.dtype == torch.uint8 else images.float()


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] → uint8 0..255 on the CPU (rounded, clamped)."""
    return ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu()
