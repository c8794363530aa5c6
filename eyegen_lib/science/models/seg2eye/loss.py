"""Seg2Eye's losses: hinge GAN, discriminator feature matching, Gram-matrix style consistency."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...losses import gram_matrix

__all__ = ["hinge_d_loss", "hinge_g_loss", "feature_matching_loss", "gram_loss"]


def hinge_d_loss(real_outs, fake_outs) -> torch.Tensor:
    """Σ over scales of mean(relu(1 − D(real))) + mean(relu(1 + D(fake))); outputs are per-scale feature lists."""
    return sum(F.relu(1 - r[-1]).mean() + F.relu(1 + f[-1]).mean() for r, f in zip(real_outs, fake_outs))


def hinge_g_loss(fake_outs) -> torch.Tensor:
    return sum(-f[-1].mean() for f in fake_outs)


def feature_matching_loss(real_outs, fake_outs) -> torch.Tensor:
    """L1 between D's intermediate features on fake and (detached) real, averaged over scales."""
    loss = 0.0
    for r, f in zip(real_outs, fake_outs):
        for fr, ff in zip(r[:-1], f[:-1]):
            loss = loss + F.l1_loss(ff, fr.detach())
    return loss / len(real_outs)


def gram_loss(fake_feats, target_feats) -> torch.Tensor:
    """Σ over encoder layers of MSE between Gram matrices over the batch, as the official code
    computes them (:func:`eyegen_lib.science.losses.gram_matrix`, ``over="batch"``)."""
    return sum(F.mse_loss(gram_matrix(f, over="batch"), gram_matrix(t, over="batch"))
               for f, t in zip(fake_feats, target_feats))
