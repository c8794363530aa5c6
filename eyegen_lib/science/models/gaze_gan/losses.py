"""The GAN's losses: WGAN-GP for the critic, and the perceptual (content + style) terms on VGG-16
as the official code computes them (package doc)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...backbones import load_backbone_features
from ...losses import gram_matrix
from .config import VGG_INPUTS

__all__ = ["wgan_critic_loss", "random_interpolates", "gradient_penalty", "gram_matrix", "content_loss", "style_loss",
           "VGG16Perceptual"]


def wgan_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """``mean D(fake) − mean D(real)``: what the critic minimises; its negative estimates the
    Wasserstein distance between real and generated images."""
    return fake_scores.mean() - real_scores.mean()


def random_interpolates(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``ε·real + (1 − ε)·fake`` with one ε ~ U(0, 1) per sample (WGAN-GP's x̂), detached from both
    and requiring grad, ready for :func:`gradient_penalty`."""
    eps = torch.rand(len(real), *([1] * (real.ndim - 1)), device=real.device, dtype=real.dtype)
    return (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)


def gradient_penalty(scores: torch.Tensor, interpolates: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's ``mean over samples of (‖∂ Σ scores / ∂ x̂‖₂ − 1)²``, with ``scores`` the critic's
    output on ``interpolates``. A patch critic's scores are summed per image first (the official
    ``tf.gradients(D(x̂), x̂)``); samples are independent because the critic has no batch norm.
    The graph is kept (``create_graph``) so that the penalty trains the critic."""
    grad, = torch.autograd.grad(scores.sum(), interpolates, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).square().mean()


def content_loss(fake_features: torch.Tensor, target_features: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of activations (official: ``l2_loss · 2 / size``)."""
    return F.mse_loss(fake_features, target_features)


def style_loss(fake_features: list[torch.Tensor], target_features: list[torch.Tensor]) -> torch.Tensor:
    """Σ over layers of ``‖Gram(fake) − Gram(target)‖² / (number of activations of the layer)``, with
    per-image Gram matrices (:func:`eyegen_lib.science.losses.gram_matrix`, the official ``gram``)."""
    return sum((gram_matrix(f) - gram_matrix(t)).square().sum() / f.numel()
               for f, t in zip(fake_features, target_features))


class VGG16Perceptual(nn.Module):
    """ImageNet VGG-16 (offline weights, frozen) → the activations (after ReLU) He et al. compare:
    conv1_2, conv2_2, conv3_3, conv4_3 for style and conv5_3 for content. Raises
    :class:`~eyegen_lib.science.backbones.BackboneWeightsNotFound` (saying where to put the file) without them."""

    STYLE_LAYERS = ("conv1_2", "conv2_2", "conv3_3", "conv4_3")
    CONTENT_LAYER = "conv5_3"
    # positions of those layers' ReLUs in torchvision's vgg16().features
    RELU_INDEX = {"conv1_2": 3, "conv2_2": 8, "conv3_3": 15, "conv4_3": 22, "conv5_3": 29}

    def __init__(self):
        super().__init__()
        self.features = load_backbone_features("vgg16")[: self.RELU_INDEX["conv5_3"] + 1]
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)  # a frozen feature extractor: always in eval mode

    def forward(self, images: torch.Tensor, vgg_input: str = "imagenet") -> dict[str, torch.Tensor]:
        """Images in [−1, 1] → {layer name: activation}. ``vgg_input="imagenet"`` normalises them as
        the weights expect; ``"official"`` feeds them as He et al.'s code did, read as mean-subtracted
        0..255 pixels (torchvision's input for such a pixel is ``value / (255·std)``)."""
        if vgg_input == "imagenet":
            x = ((images + 1) / 2 - self.mean) / self.std
        elif vgg_input == "official":
            x = images / (255 * self.std)
        else:
            raise ValueError(f"vgg_input must be one of {VGG_INPUTS}, got {vgg_input!r}")
        wanted = {i: name for name, i in self.RELU_INDEX.items()}
        out = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                out[wanted[i]] = x
        return out

    def losses(self, fake: torch.Tensor, target: torch.Tensor,
               vgg_input: str = "imagenet") -> tuple[torch.Tensor, torch.Tensor]:
        """(content, style) losses of ``fake`` against the ground truth ``target`` (no gradient to it)."""
        fake_f = self(fake, vgg_input)
        with torch.no_grad():
            target_f = self(target, vgg_input)
        content = content_loss(fake_f[self.CONTENT_LAYER], target_f[self.CONTENT_LAYER])
        style = style_loss([fake_f[n] for n in self.STYLE_LAYERS], [target_f[n] for n in self.STYLE_LAYERS])
        return content, style
