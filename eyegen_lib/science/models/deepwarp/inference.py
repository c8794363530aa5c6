"""Redirecting eyes with a trained DeepWarp."""
from __future__ import annotations

import torch

from ....core.images import to_signed, to_uint8
from ....core.runtime import tqdm
from .networks import DeepWarp

__all__ = ["redirect", "redirect_set"]


@torch.no_grad()
def redirect(model: DeepWarp, images: torch.Tensor, landmarks: torch.Tensor, angle: torch.Tensor, *,
             batch_size: int = 256, return_parts: bool = False, progress: bool = False):
    """Redirect uint8 (N, 3, H, W) eye crops (or floats in [−1, 1]) by ``angle`` (N, 2) radians
    (target − source (pitch, yaw)); returns uint8 (N, 3, H, W). ``return_parts=True`` also returns
    the intermediate results (dict of CPU tensors, flows in pixels, images in [−1, 1])."""
    model.eval()
    device = next(model.parameters()).device
    outs, parts = [], {}
    for i in tqdm(range(0, len(images), batch_size), desc="redirecting", disable=not progress, leave=False):
        p = model.parts(to_signed(images[i:i + batch_size]).to(device), landmarks[i:i + batch_size].float().to(device),
                        angle[i:i + batch_size].float().to(device))
        outs.append(to_uint8(p["output"]))
        if return_parts:
            for k, v in p.items():
                if v is not None:
                    parts.setdefault(k, []).append(v.cpu())
    result = torch.cat(outs) if outs else torch.empty(0, 3, *model.config.image_size, dtype=torch.uint8)
    if return_parts:
        return result, {k: torch.cat(v) for k, v in parts.items()}
    return result


def redirect_set(model: DeepWarp, rset, *, batch_size: int = 256, progress: bool = False) -> torch.Tensor:
    """Predictions for an :class:`~eyegen_lib.science.evaluation.RedirectionSet` (uint8, the set's order)."""
    if rset.landmarks is None:
        raise ValueError("DeepWarp needs the source landmarks, and this redirection set has none")
    angle = rset.target_gaze.float() - rset.source_gaze.float()
    return redirect(model, rset.source, rset.landmarks, angle, batch_size=batch_size, progress=progress)
