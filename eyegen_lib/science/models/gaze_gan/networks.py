"""The generator (the authors' repainting one, or ours with a keep mask) and the two-headed
discriminator (WGAN critic and gaze regressor), at the paper's shapes (package doc)."""
from __future__ import annotations

import torch
from torch import nn

from .config import (
    DISCRIMINATOR_WIDTHS,
    GENERATOR_OUTPUTS,
    GENERATOR_UPSAMPLINGS,
    GENERATOR_WIDTHS,
    KEEP_LOGIT_INIT,
    GazeGANConfig,
    code_to_gaze,
    gaze_to_code,
)

__all__ = ["Generator", "Discriminator", "ResidualBlock", "GazeGAN"]


def _instance_norm(channels: int) -> nn.InstanceNorm2d:
    # TF's instance_norm: statistics of each image, learned scale and shift, ε = 1e-5
    return nn.InstanceNorm2d(channels, eps=1e-5, affine=True)


def _conv_norm_relu(c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False), _instance_norm(c_out),
                         nn.ReLU(inplace=True))


def _init_weights(module: nn.Module) -> None:
    """N(0, 0.02) conv weights and zero biases, as the official code initialises every layer."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _upsample(c_in: int, c_out: int, how: str) -> list[nn.Module]:
    """×2 resolution: the authors' deconv4×4 stride 2, or nearest ×2 then conv3×3, whose kernel
    overlaps every output pixel alike (no checkerboard; Odena, Dumoulin, Olah, Distill 2016)."""
    if how == "deconv":
        return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)]
    return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)]


class ResidualBlock(nn.Module):
    """``x + IN(conv3×3(ReLU(IN(conv3×3(x)))))`` — no activation after the sum (official code)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(_conv_norm_relu(channels, channels, 3, 1, 1),
                                  nn.Conv2d(channels, channels, 3, 1, 1, bias=False), _instance_norm(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Generator(nn.Module):
    """(B, 3, H, W) patch in [−1, 1] and (B, 2) gaze code → (B, 3, H, W) patch in [−1, 1].

    ``output="image"`` (the authors'): the last conv7×7 paints the whole patch (tanh).
    ``output="blend"`` (ours, :data:`GENERATOR_OUTPUTS`): it paints a colour image C and a keep mask
    K = σ(·) from one more channel, and the patch is ``K·x + (1 − K)·C`` — the attention-mask
    generator of GANimation (Pumarola et al., ECCV 2018, eq. 1), so pixels the redirection need not
    touch can pass through unchanged instead of being repainted. K's bias starts at
    :data:`KEEP_LOGIT_INIT` (K ≈ 0.88): a fresh generator mostly returns its input."""

    def __init__(self, widths: tuple[int, int, int] = GENERATOR_WIDTHS, n_res_blocks: int = 6, gaze_dims: int = 2,
                 output: str = "image", upsampling: str = "deconv"):
        super().__init__()
        if output not in GENERATOR_OUTPUTS:
            raise ValueError(f"generator output must be one of {GENERATOR_OUTPUTS}, got {output!r}")
        if upsampling not in GENERATOR_UPSAMPLINGS:
            raise ValueError(f"generator upsampling must be one of {GENERATOR_UPSAMPLINGS}, got {upsampling!r}")
        self.output = output
        w0, w1, w2 = widths
        self.encoder = nn.Sequential(_conv_norm_relu(3 + gaze_dims, w0, 7, 1, 3),
                                     _conv_norm_relu(w0, w1, 4, 2, 1), _conv_norm_relu(w1, w2, 4, 2, 1))
        self.blocks = nn.Sequential(*[ResidualBlock(w2) for _ in range(n_res_blocks)])
        self.decoder = nn.Sequential(
            *_upsample(w2, w1, upsampling), _instance_norm(w1), nn.ReLU(inplace=True),
            *_upsample(w1, w0, upsampling), _instance_norm(w0), nn.ReLU(inplace=True),
            # "blend" adds the keep mask's logit as a fourth channel of the same last conv
            nn.Conv2d(w0, 3 if output == "image" else 4, 7, 1, 3, bias=False))
        _init_weights(self)
        # the mask's bias (the conv has none, as in the authors' code): starts near "keep everything"
        self.keep_bias = nn.Parameter(torch.tensor(KEEP_LOGIT_INIT)) if output == "blend" else None

    def parts(self, image: torch.Tensor, gaze_code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(keep mask K (B, 1, H, W), painted image C (B, 3, H, W)); K is 0 everywhere for the
        authors' generator, which keeps nothing."""
        tiled = gaze_code[:, :, None, None].expand(-1, -1, *image.shape[-2:]).to(image.dtype)
        out = self.decoder(self.blocks(self.encoder(torch.cat([image, tiled], 1))))
        painted = torch.tanh(out[:, :3])
        if self.keep_bias is None:
            return torch.zeros_like(out[:, :1]), painted
        return torch.sigmoid(out[:, 3:] + self.keep_bias), painted

    def forward(self, image: torch.Tensor, gaze_code: torch.Tensor) -> torch.Tensor:
        keep, painted = self.parts(image, gaze_code)
        return painted if self.keep_bias is None else keep * image + (1 - keep) * painted


class Discriminator(nn.Module):
    """(B, 3, H, W) → (critic scores (B, 1, 3, 3), gaze code (B, 2)). ``map_size`` is the trunk's output
    size, (H, W) / 2**len(widths) (2 × 2 at 64 px with 5 layers), and the kernel of both heads; the
    critic's zero padding of 1 makes its patch of scores 3 × 3."""

    def __init__(self, widths: tuple[int, ...] = DISCRIMINATOR_WIDTHS, map_size: tuple[int, int] = (2, 2),
                 gaze_dims: int = 2):
        super().__init__()
        layers, c_in = [], 3
        for c_out in widths:
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.01)]
            c_in = c_out
        self.trunk = nn.Sequential(*layers)
        self.critic = nn.Conv2d(c_in, 1, map_size, 1, 1, bias=False)
        self.gaze = nn.Conv2d(c_in, gaze_dims, map_size, 1, 0, bias=False)
        _init_weights(self)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(image)
        return self.critic(features), self.gaze(features).flatten(1)


class GazeGAN(nn.Module):
    """The generator and the two-headed discriminator of one model, with their config.

    ``forward(images, target_gaze)`` redirects (B, 3, H, W) patches in [−1, 1] to ``target_gaze``
    (B, 2) (pitch, yaw) radians; the networks themselves take gaze codes (:func:`gaze_to_code`)."""

    def __init__(self, config: GazeGANConfig):
        super().__init__()
        self.config = config
        self.generator = Generator(config.generator_widths, config.n_res_blocks, output=config.generator_output,
                                   upsampling=config.generator_upsampling)
        self.discriminator = Discriminator(config.discriminator_widths, config.discriminator_map_size)

    def check_inputs(self, image: torch.Tensor, gaze: torch.Tensor | None = None) -> None:
        """ValueError, saying what was expected, for a wrongly shaped image batch or gaze."""
        H, W = self.config.image_size
        if image.ndim != 4 or tuple(image.shape[1:]) != (3, H, W):
            raise ValueError(f"image must be (B, 3, {H}, {W}) (RGB eye patches of this model's size), "
                             f"got {tuple(image.shape)}")
        if gaze is not None and (gaze.ndim != 2 or tuple(gaze.shape) != (len(image), 2)):
            raise ValueError(f"gaze must be (B, 2) = (pitch, yaw) radians, one row per image (B = {len(image)}), "
                             f"got {tuple(gaze.shape)}")

    def gaze_code(self, gaze: torch.Tensor) -> torch.Tensor:
        return gaze_to_code(gaze, self.config.gaze_scale_deg)

    def forward(self, image: torch.Tensor, target_gaze: torch.Tensor) -> torch.Tensor:
        self.check_inputs(image, target_gaze)
        return self.generator(image, self.gaze_code(target_gaze))

    def estimate_gaze(self, image: torch.Tensor) -> torch.Tensor:
        """The discriminator's gaze head as (B, 2) (pitch, yaw) radians."""
        self.check_inputs(image)
        return code_to_gaze(self.discriminator(image)[1], self.config.gaze_scale_deg)
