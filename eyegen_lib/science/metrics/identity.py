"""Does a redirected eye keep its person? Skin tone and iris colour of output against source.

A gaze-redirection method should move the eye and leave the person alone. Three measures, each
over the pairs of a redirection protocol (one value per method, not per image):

* **skin-tone r** — Pearson r over pairs of the output's mean skin brightness against the
  source's, both read on the same pixels: where the class masks of the source and of the *target*
  (where a correct output has skin) both say skin (0); without masks (real photographs), on a
  border ring ``border_px`` wide, which on a 64 × 64 eye patch is skin and brow. The unchanged input scores ≈ 1;
  a method that paints every person with one tone scores ≈ 0; one that swaps dark and light skin
  scores below 0.
* **iris-colour r** — the same for the mean RGB colour of the iris (class 2, without the pupil),
  the Pearson r of each channel averaged over R, G, B. Needs the class masks (None without them).
* **LPIPS to the input** — the mean LPIPS between output and the unchanged source: how much of
  the picture the method changed (the real target scores what the gaze change itself costs).

Images are uint8 (N, 3, H, W); masks uint8 (N, H, W) with OpenEDS' classes (0 skin, 1 sclera,
2 iris, 3 pupil), as the renderer returns them.
"""
from __future__ import annotations

import torch

from ...core.images import to_signed
from .perceptual import lpips_distance

__all__ = ["SKIN", "IRIS", "region_mean", "border_mean", "pearson_r", "skin_tone_r", "iris_colour_r",
           "identity_scores"]

SKIN, IRIS = 0, 2


def _check(images: torch.Tensor, masks: torch.Tensor | None, name: str) -> None:
    if images.ndim != 4:
        raise ValueError(f"{name} must be (N, C, H, W) images, got shape {tuple(images.shape)}")
    if masks is not None and tuple(masks.shape) != (images.shape[0], *images.shape[-2:]):
        raise ValueError(f"the masks for {name} must be (N, H, W) = {(images.shape[0], *images.shape[-2:])}, "
                         f"got {tuple(masks.shape)}")


def region_mean(images: torch.Tensor, masks: torch.Tensor, label: int) -> torch.Tensor:
    """(N, C) mean colour of each image over the pixels where its mask is ``label`` (NaN where it has none)."""
    _check(images, masks, "images")
    where = (masks == label).unsqueeze(1).float()
    count = where.sum((2, 3))
    return (images.float() * where).sum((2, 3)) / count.where(count > 0, torch.tensor(float("nan")))


def border_mean(images: torch.Tensor, border_px: int = 8) -> torch.Tensor:
    """(N, C) mean colour of a ring ``border_px`` wide along the patch's edge (skin and brow on an eye patch)."""
    _check(images, None, "images")
    H, W = images.shape[-2:]
    if not 0 < 2 * border_px < min(H, W):
        raise ValueError(f"border_px must be positive and leave an inside: got {border_px} for {H}×{W} images")
    ring = torch.ones(H, W, dtype=torch.bool)
    ring[border_px:-border_px, border_px:-border_px] = False
    return images.float()[:, :, ring].mean(-1)


def pearson_r(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson r of two (N,) series, pairs with a NaN dropped; NaN when either has no spread."""
    keep = ~(a.isnan() | b.isnan())
    a, b = a[keep].double(), b[keep].double()
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def skin_tone_r(output: torch.Tensor, source: torch.Tensor, *, output_mask: torch.Tensor | None = None,
                source_mask: torch.Tensor | None = None, border_px: int = 8) -> float:
    """Pearson r over pairs of mean skin brightness, output against source (see the module doc)."""
    if (output_mask is None) != (source_mask is None):
        raise ValueError("give masks for both output and source, or for neither (then a border ring is skin)")
    if output_mask is None:
        out, src = border_mean(output, border_px), border_mean(source, border_px)
    else:  # the skin both frames share: an output that leaves the skin alone scores exactly 1
        both = torch.where((output_mask == SKIN) & (source_mask == SKIN), SKIN, SKIN + 1).to(torch.uint8)
        out, src = region_mean(output, both, SKIN), region_mean(source, both, SKIN)
    return pearson_r(out.mean(1), src.mean(1))


def iris_colour_r(output: torch.Tensor, source: torch.Tensor, *, output_mask: torch.Tensor,
                  source_mask: torch.Tensor) -> float:
    """Mean over R, G, B of the Pearson r over pairs of the iris's mean colour, output against source."""
    out, src = region_mean(output, output_mask, IRIS), region_mean(source, source_mask, IRIS)
    return float(sum(pearson_r(out[:, c], src[:, c]) for c in range(out.shape[1])) / out.shape[1])


@torch.no_grad()
def identity_scores(output: torch.Tensor, rset, *, border_px: int = 8) -> dict[str, float]:
    """Skin-tone r, iris-colour r (None without masks) and mean LPIPS to the input of one method's
    ``output`` (uint8, the protocol's order) on a :class:`~eyegen_lib.science.evaluation.RedirectionSet`.
    The output is read where the target has each class; the source where it has it."""
    if output.shape != rset.source.shape:
        raise ValueError(f"outputs must match the protocol's images {tuple(rset.source.shape)}, got {tuple(output.shape)}")
    masks = getattr(rset, "target_mask", None), getattr(rset, "source_mask", None)
    has_masks = masks[0] is not None and masks[1] is not None
    kw = dict(output_mask=masks[0], source_mask=masks[1]) if has_masks else {}
    return {"skin_tone_r": skin_tone_r(output, rset.source, border_px=border_px, **kw),
            "iris_colour_r": iris_colour_r(output, rset.source, **kw) if has_masks else None,
            "lpips_to_input": float(lpips_distance(to_signed(output), to_signed(rset.source)).mean())}
