"""Redirecting eyes with a trained gaze GAN, and reading gaze with its discriminator's head."""
from __future__ import annotations

import torch

from ....core.images import to_signed, to_uint8
from ....core.runtime import tqdm
from .networks import GazeGAN

__all__ = ["redirect", "redirect_set", "estimate_gaze", "keep_masks"]


@torch.no_grad()
def redirect(model: GazeGAN, images: torch.Tensor, target_gaze: torch.Tensor, *, batch_size: int = 256,
             progress: bool = False) -> torch.Tensor:
    """Redirect uint8 (N, 3, H, W) eye patches (or floats in [−1, 1]) to ``target_gaze`` (N, 2)
    (pitch, yaw) radians; returns uint8 (N, 3, H, W)."""
    model.eval()
    model.check_inputs(images, target_gaze)
    device = next(model.parameters()).device
    outs = []
    for i in tqdm(range(0, len(images), batch_size), desc="redirecting", disable=not progress, leave=False):
        chunk = to_signed(images[i:i + batch_size]).to(device)
        outs.append(to_uint8(model(chunk, target_gaze[i:i + batch_size].float().to(device))))
    return torch.cat(outs) if outs else torch.empty(0, 3, *model.config.image_size, dtype=torch.uint8)


@torch.no_grad()
def keep_masks(model: GazeGAN, images: torch.Tensor, target_gaze: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """The generator's keep mask K (N, 1, H, W) in [0, 1] for redirecting ``images`` to ``target_gaze``:
    1 where the output is the input, 0 where it is painted (0 everywhere for the authors' generator)."""
    model.eval()
    model.check_inputs(images, target_gaze)
    device = next(model.parameters()).device
    outs = [model.generator.parts(to_signed(images[i:i + batch_size]).to(device),
                                  model.gaze_code(target_gaze[i:i + batch_size].float().to(device)))[0].cpu()
            for i in range(0, len(images), batch_size)]
    return torch.cat(outs) if outs else torch.empty(0, 1, *model.config.image_size)


def redirect_set(model: GazeGAN, rset, *, batch_size: int = 256, progress: bool = False) -> torch.Tensor:
    """Predictions for an :class:`~eyegen_lib.science.evaluation.RedirectionSet` (uint8, the set's order)."""
    return redirect(model, rset.source, rset.target_gaze, batch_size=batch_size, progress=progress)


@torch.no_grad()
def estimate_gaze(model: GazeGAN, images: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """(N, 2) (pitch, yaw) radians from the discriminator's own gaze head (not the independent
    estimator the evaluation uses), for uint8 patches or floats in [−1, 1]."""
    model.eval()
    model.check_inputs(images)
    device = next(model.parameters()).device
    outs = [model.estimate_gaze(to_signed(images[i:i + batch_size]).to(device)).cpu()
            for i in range(0, len(images), batch_size)]
    return torch.cat(outs) if outs else torch.empty(0, 2)
