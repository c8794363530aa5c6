"""He, Spurr, Zhang, Hilliges (ICCV 2019): photo-realistic monocular gaze redirection with a GAN.

A generator ``G(x, g)`` repaints a 64 × 64 RGB eye patch ``x`` (in [−1, 1]) so that it looks in
the direction ``g``; a discriminator with two heads, a WGAN critic and a gaze regressor (StarGAN
style, §4.1), judges realism and gaze. Shapes follow the paper's appendix tables (8.1) and the
authors' TF code (``HzDmS/gaze_redirection``):

* **Generator** — input: the patch ⊕ the target gaze tiled to 2 constant maps (5 channels).
  conv7×7-64 (stride 1, pad 3) · IN · ReLU; conv4×4 s2 (pad 1) to 128 and 256, each IN · ReLU;
  6 residual blocks of [conv3×3 · IN · ReLU · conv3×3 · IN] + identity at 256 × 16 × 16;
  transposed conv4×4 s2 (pad 1) to 128 and 64, each IN · ReLU; conv7×7-3 · tanh.
  Instance norm with a learned scale and shift (TF ``instance_norm``, ε = 1e−5); no conv biases.
  (Ours by default: a fourth output channel, the keep mask — see the departures below.)
* **Discriminator** — a shared trunk of **5** conv4×4 s2 (pad 1) layers, 64 → 128 → 256 → 512 →
  1024 channels, each LeakyReLU(0.01), with biases and *no* normalisation (a WGAN-GP critic's
  gradient penalty is per sample, which batch norm would break): 64 px → 2 px. Two heads on the
  2 × 2 × 1024 map, with the kernel the size of that map (``image_size / 32``), no bias:
  the critic ``Conv(2×2, stride 1, pad 1)`` → a 3 × 3 patch of scores, the gaze regressor
  ``Conv(2×2, stride 1, pad 0)`` → 2 values. (A sixth stride-2 layer to 2048 would leave a 1 × 1
  map; the paper's table and code stop at 1024, and so do we.)
* All conv weights start N(0, 0.02), biases 0 (the official code's initialisers).

Gaze is given to the public functions as (pitch, yaw) in radians (the project's convention) and
fed to the networks as a *gaze code*: degrees divided by ``gaze_scale_deg`` = (10°, 15°), He et al.'s
normalisation of Columbia's ±10° vertical × ±15° horizontal grid to [−1, 1] (labels ``[H/15, V/10]``).

Losses (eq. 1–9 with the official code's weights), on paired data (x_s at gaze g_s, x_t at g_t):

* critic: ``D(G(x_s, g_t)) − D(x_s)`` (means over the 3 × 3 patch and the batch)
  + λ_gp = 10 · gradient penalty ``(‖∇_x̂ ΣD(x̂)‖₂ − 1)²`` at random interpolates x̂ of real and fake
  + λ_gaze = 5 · MSE(gaze head(x_s), g_s) — the gaze head learns on real images only;
* generator: ``−D(G(x_s, g_t))`` + λ_gaze = 5 · MSE(gaze head(G(x_s, g_t)), g_t) (D fixed)
  + λ_cycle = 50 · L1(G(G(x_s, g_t), g_s), x_s) + λ_identity = 25 · L1(G(x_s, g_s), x_s) (ours, below)
  + λ_perceptual = 100 · (content + style) against the ground truth x_t, on ImageNet VGG-16:
  content = MSE of conv5_3 activations; style = Σ over conv1_2, conv2_2, conv3_3, conv4_3 of
  ``‖Gram(φ(fake)) − Gram(φ(x_t))‖² / |φ|`` with ``Gram = φᵀφ / (H·W·C)`` per image and |φ| the
  number of activations (the official ``tf.nn.l2_loss · 2 / size``). VGG-16 comes from the
  project's offline weights (:mod:`eyegen_lib.backbones`).

  *What VGG sees* (``vgg_input``). The official code passes the generator's [−1, 1] images straight
  to slim's ``vgg_16``, whose weights expect mean-subtracted 0..255 pixels: the network sees a faint,
  almost black image, its activations — and so the perceptual losses — are about two orders of
  magnitude smaller than on a properly scaled image, and λ_perceptual = 100 was chosen at that scale.
  ``vgg_input="official"`` (the default) reproduces it with our torchvision weights by feeding the
  [−1, 1] values as if they were mean-subtracted 0..255 pixels (``images / (255·std)``);
  ``"imagenet"`` feeds properly normalised images. Measured at the ``cpu`` profile: with
  ``"imagenet"`` the content term (≈ 30–60 after λ) dominates the generator's objective, the cycle
  L1 stays at ≈ 0.3 for 400 updates and the output is colour noise; with ``"official"`` the
  perceptual terms fall to ≈ 0.03 and the cycle loss falls.

**Our two departures from the authors' code** (each a named switch; the ``authors`` variant undoes
both): an identity term in the objective, and a generator that keeps its input where it need not
change it.

*The identity term* (``lambda_identity``, 25; 0 removes it, the ``no_identity`` variant). Under the
official objective our GAN
swapped skin tones: dark skin came out light and light skin dark (source/output skin-tone r −0.96
for the zoo's former 10,000-iteration model, renderer 2026.12-1, :mod:`eyegen_lib.metrics.identity`;
its 1,000-iteration snapshot is the zoo's ``no_identity`` entry, r −0.94).
Nothing in that objective tells a swap from the identity: the cycle term is satisfied by any
mapping that the way back undoes, a swap included; the critic judges the distribution of outputs,
which a swap keeps; the gaze head does not look at skin; and the perceptual terms, fed as the
official code feeds them, barely see colour (a 30-grey-level tone shift of the target costs 0.0006
after λ, against 0.07 for our outputs' typical error). The generator's instance norms hide
absolute brightness from it, so a random generator's output tone correlates with its input's at
r ≈ ±0.5, with a sign set by the initialisation; training amplifies whichever it is. In isolation
runs at ``cpu`` (120 iterations, one change at a time; ``benchmarks/gaze_gan_identity.py``) the
official objective swapped in 2 of 4 seeds (r −0.60, −0.93), while with the term below all 3 seeds
kept their skin (r 0.89–0.91) at lower LPIPS. Without the perceptual terms both seeds tried kept
their skin (r 0.91, 0.92), too few to blame those terms; VGG fed normalised images (r 0.77) and the
paper's learning rate (r 0.11) ran one seed each, and each passed below 0 on the way. CycleGAN's identity loss (Zhu et
al. 2017, §5.2, added there "to preserve color composition between the input and output") is the
smallest change that breaks the tie: redirecting an eye to the gaze it already has must return it,
``λ_identity · L1(G(x_s, g_s), x_s)``, at half the cycle weight as in CycleGAN. It costs one more
generator pass per generator step.

*The keep mask* (``generator_output``: ``"blend"``, ours; ``"image"``, the authors'). With the identity
term alone the skin stayed but every pixel was still repainted through the 16 × 16 bottleneck: at the
zoo's 2,000 ``cpu`` iterations the full recipe's protocol LPIPS was 0.143 against 0.050 for the
unchanged input, and an eye redirected to the gaze it already had came back 0.18–0.19 away from
itself in LPIPS (its *repaint floor*, about its whole distance to the target). GANimation's
attention-mask generator (Pumarola et al., ECCV 2018, eq. 1) lets pixels through instead:
``y = K·x + (1 − K)·C``, colour C and mask K from the last conv. In isolation runs at ``cpu``
(``benchmarks/gaze_gan_identity.py``, seed 0, a tenth of the protocol, where the unchanged input
scores LPIPS 0.047 and gaze error 16.5°): the identity recipe without the mask reached LPIPS 0.199
(floor 0.192, gaze error 4.6°) at 600 iterations; with the mask, 0.055 (floor 0.009, 15.4°) at 100
and 0.059 (floor 0.001, 12.4°) at 600, skin-tone r 1.00 throughout; the mask without the identity
term, 0.115 (floor 0.070) at 100. The mask trades gaze movement for fidelity at these lengths.

Setting λ_gaze, λ_cycle or λ_perceptual to 0 removes that term (and its cost) — the paper's
ablations (§5.5: one model per removed term); λ_identity = 0 removes ours. λ_gaze weighs both gaze terms, the critic's and the
generator's, as the official code uses one weight (5) for both. Optimisation: Adam, lr 2e−4, β = (0.5, 0.999), batch 32; **5 critic steps per generator
step**, each on its own mini-batch (the official loop draws a batch per update); the learning rate
is constant for the first half of training and decays linearly to 0 over the second (the paper's
150 + 150 epochs). One training *step* here is one iteration = ``n_critic`` critic updates + 1
generator update, and ``steps`` counts generator updates.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import load_backbone_features
from ..checkpoint import field_added_later
from ..batches import BatchSource
from ..data.pairs import PairRows, pair_parts
from ..distributed import DistInfo, init_distributed
from ..engine import TrainingRun
from ..profiles import PAPER_GAZE_GAN_STEPS, Profile
from ..runtime import tqdm
from ..training import Trainer
from ..images import to_signed, to_uint8

__all__ = ["GazeGANConfig", "GazeGAN", "Generator", "Discriminator", "ResidualBlock", "VGG16Perceptual",
           "gaze_to_code", "code_to_gaze", "random_interpolates", "gradient_penalty", "wgan_critic_loss",
           "gram_matrix", "content_loss", "style_loss", "pairs_to_tensors", "IterationBatches", "GazeGANTrainer",
           "gaze_gan_run", "train_gaze_gan", "redirect", "redirect_set", "estimate_gaze",
           "linear_decay", "VGG_INPUTS", "D_LOSS_KEYS", "G_LOSS_KEYS", "PAPER_GENERATOR_STEPS", "ABLATIONS"]

GENERATOR_WIDTHS = (64, 128, 256)  # conv7×7, then the two stride-2 convs (the residual blocks keep the last)
DISCRIMINATOR_WIDTHS = (64, 128, 256, 512, 1024)  # one stride-2 conv4×4 each: 64 px → 2 px
# 300 epochs of Columbia's frontal training pairs (50 subjects × 2 eyes × 21 × 21 = 44,100) at batch 32,
# one generator update per 5 critic updates (one batch each): ≈ 82,700 generator updates.
PAPER_GENERATOR_STEPS = PAPER_GAZE_GAN_STEPS
# The named losses train_step returns; each is already multiplied by its λ, so a side's keys sum to
# its objective. A term whose λ is 0 is absent.
D_LOSS_KEYS = ("d_adv", "d_gp", "d_gaze")
G_LOSS_KEYS = ("g_adv", "g_gaze", "g_cycle", "g_content", "g_style", "g_identity")
# §5.5's ablations: one model per removed loss term (config overrides of the full model).
VGG_INPUTS = ("official", "imagenet")
GENERATOR_OUTPUTS = ("image", "blend")  # what the generator's last layer makes (Generator's doc)
# every gaze GAN saved before the switch existed repainted the patch: such an artifact serves "image" runs
field_added_later("generator_output", "image")
KEEP_LOGIT_INIT = 2.0  # σ(2) ≈ 0.88: a fresh "blend" generator keeps most of each input pixel  # how the perceptual loss's VGG-16 sees the images (module doc)
# "authors" undoes both of our departures: their generator and objective, as their code has them.
ABLATIONS = {"full": {}, "no_perceptual": {"lambda_perceptual": 0.0}, "no_cycle": {"lambda_cycle": 0.0},
             "no_gaze": {"lambda_gaze": 0.0}, "no_identity": {"lambda_identity": 0.0},
             "authors": {"generator_output": "image", "lambda_identity": 0.0}}


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------
@dataclass
class GazeGANConfig:
    image_size: tuple[int, int] = (64, 64)
    generator_widths: tuple[int, int, int] = GENERATOR_WIDTHS
    n_res_blocks: int = 6
    discriminator_widths: tuple[int, ...] = DISCRIMINATOR_WIDTHS
    gaze_scale_deg: tuple[float, float] = (10.0, 15.0)  # (pitch, yaw) degrees that map to gaze code ±1
    lambda_gp: float = 10.0
    lambda_gaze: float = 5.0  # 0: ablation "no gaze loss" (neither head training nor generator term)
    lambda_cycle: float = 50.0  # 0: ablation "no cycle-consistency loss"
    lambda_perceptual: float = 100.0  # × (content + style); 0: ablation "no perceptual loss" (VGG not loaded)
    # × L1(G(x_s, g_s), x_s): redirecting an eye to its own gaze must give it back. Our departure from
    # the authors' code (which has no such term: 0 restores it, the "no_identity" variant); see the module doc
    lambda_identity: float = 25.0
    vgg_input: str = "official"  # "official": [−1, 1] as the TF code fed it; "imagenet": normalised (see module doc)
    # "blend" (ours): the input kept through a learned mask; "image": the authors' generator, which repaints
    # every pixel (the "authors" variant). See Generator and the module doc
    generator_output: str = "blend"
    n_critic: int = 5
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 32
    steps: int = PAPER_GENERATOR_STEPS  # generator updates (each after n_critic critic updates)
    decay_start: float = 0.5  # fraction of ``steps`` after which the learning rate decays linearly to 0
    # each ablation's length (None: as long as the full model). Shorter ablations run at the full model's
    # constant learning rate and are compared with its snapshot at that step (see for_ablation)
    ablation_steps: int | None = None

    def __post_init__(self):
        self.image_size = tuple(int(s) for s in self.image_size)
        self.generator_widths = tuple(int(w) for w in self.generator_widths)
        self.discriminator_widths = tuple(int(w) for w in self.discriminator_widths)
        self.gaze_scale_deg = tuple(float(s) for s in self.gaze_scale_deg)
        if len(self.generator_widths) != 3:
            raise ValueError("generator_widths are the conv7×7 and the two stride-2 convs' widths, "
                             f"got {self.generator_widths}")
        stride = 2 ** len(self.discriminator_widths)
        if len(self.image_size) != 2 or any(s % stride for s in self.image_size):
            raise ValueError(f"image_size {self.image_size} must be divisible by 2**{len(self.discriminator_widths)} = "
                             f"{stride}: the discriminator halves it once per layer")
        for name in ("lambda_gp", "lambda_gaze", "lambda_cycle", "lambda_perceptual", "lambda_identity"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        if self.vgg_input not in VGG_INPUTS:
            raise ValueError(f"vgg_input must be one of {VGG_INPUTS}, got {self.vgg_input!r}")
        if self.generator_output not in GENERATOR_OUTPUTS:
            raise ValueError(f"generator_output must be one of {GENERATOR_OUTPUTS}, got {self.generator_output!r}")
        if self.n_critic < 1:
            raise ValueError(f"n_critic must be ≥ 1, got {self.n_critic}")
        if not 0 <= self.decay_start <= 1:
            raise ValueError(f"decay_start is a fraction of the steps, got {self.decay_start}")
        if self.ablation_steps is not None and self.ablation_steps < self.steps and \
                not 0 < self.ablation_steps <= self.decay_start * self.steps:
            raise ValueError(f"ablation_steps ({self.ablation_steps}) shorter than the full run must lie in its constant-"
                             f"learning-rate part (≤ decay_start · steps = {self.decay_start * self.steps:g}), or the "
                             "full model's snapshot there is not a run of that length")

    def for_ablation(self, ablation: str) -> "GazeGANConfig":
        """The config of one of §5.5's ablations (:data:`ABLATIONS`): its loss term removed. When the
        ablations are shorter than the full model (``ablation_steps`` < ``steps``, the small profiles)
        they run ``ablation_steps`` iterations at a constant learning rate, which is exactly the full
        model's first ``ablation_steps`` iterations: ``for_ablation("full")`` is then the config of the
        full model's snapshot at that step, the reference each ablation is compared with."""
        if ablation not in ABLATIONS:
            raise ValueError(f"unknown gaze GAN ablation {ablation!r}; choose one of {sorted(ABLATIONS)}")
        short = self.ablation_steps is not None and self.ablation_steps < self.steps
        length = dict(steps=self.ablation_steps, decay_start=1.0, ablation_steps=None) if short else {}
        return replace(self, **ABLATIONS[ablation], **length)

    @property
    def discriminator_map_size(self) -> tuple[int, int]:
        """The trunk's output size (2 × 2 at 64 × 64): also the heads' kernel size."""
        return tuple(s // 2 ** len(self.discriminator_widths) for s in self.image_size)

    @classmethod
    def for_profile(cls, profile: Profile, **overrides) -> "GazeGANConfig":
        """The paper's widths, batch, learning rate and schedule at ``paper``. At the small profiles
        every width is scaled by ``profile.width`` (smoke 1/8, cpu 1/4) with the same layers and
        blocks, batches are small and training is short.

        Cost, measured on the 2-core CPU machine: one ``cpu`` iteration (5 critic + 1 generator step,
        batch 8) takes ≈ 1.35 s on two threads (critic steps 0.6 s, generator 0.27 s, VGG-16 0.67 s), so
        ``cpu``'s 1000 iterations take ≈ 23 minutes and its three 500-iteration ablations ≈ 25 more.
        Fewer do not make eyes: in probes on the cpu pairs the full recipe paints colour blobs at 200
        iterations (LPIPS 0.42), a dark iris between two light blobs at 400 (0.26) and a crude eye
        with the iris where the target has it at 600 (0.23, gaze error 3.7° on two test eyes).
        ``smoke``'s 6 iterations take a few seconds.

        The small profiles use lr 5e−4 rather than 2e−4: narrow layers under the official N(0, 0.02)
        initialisation leave the critic's outputs near zero at first. In probes at smoke widths on
        rendered eyes, 40 critic steps cut the gaze head's error by 24 % at 5e−4 (batch 8; 3.7× after
        60 steps) but by 5 % at 2e−4 (batch 16)."""
        kw = dict(image_size=profile.patch_size,
                  generator_widths=tuple(profile.width(c) for c in GENERATOR_WIDTHS),
                  discriminator_widths=tuple(profile.width(c) for c in DISCRIMINATOR_WIDTHS),
                  **profile.schedule("gaze_gan"))
        kw.update(overrides)
        return cls(**kw)


def gaze_to_code(gaze: torch.Tensor, scale_deg: tuple[float, float]) -> torch.Tensor:
    """(…, 2) (pitch, yaw) radians → the networks' gaze code: degrees / ``scale_deg`` (±1 on the Columbia grid)."""
    return torch.rad2deg(gaze.float()) / gaze.new_tensor(scale_deg, dtype=torch.float32)


def code_to_gaze(code: torch.Tensor, scale_deg: tuple[float, float]) -> torch.Tensor:
    """The inverse of :func:`gaze_to_code`: gaze codes → (pitch, yaw) radians."""
    return torch.deg2rad(code.float() * code.new_tensor(scale_deg, dtype=torch.float32))


# ----------------------------------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------------------------------
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
                 output: str = "image"):
        super().__init__()
        if output not in GENERATOR_OUTPUTS:
            raise ValueError(f"generator output must be one of {GENERATOR_OUTPUTS}, got {output!r}")
        self.output = output
        w0, w1, w2 = widths
        self.encoder = nn.Sequential(_conv_norm_relu(3 + gaze_dims, w0, 7, 1, 3),
                                     _conv_norm_relu(w0, w1, 4, 2, 1), _conv_norm_relu(w1, w2, 4, 2, 1))
        self.blocks = nn.Sequential(*[ResidualBlock(w2) for _ in range(n_res_blocks)])
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(w2, w1, 4, 2, 1, bias=False), _instance_norm(w1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(w1, w0, 4, 2, 1, bias=False), _instance_norm(w0), nn.ReLU(inplace=True),
            # "blend" adds the keep mask's logit as a fourth channel of the same last conv
            nn.Conv2d(w0, 3 if output == "image" else 4, 7, 1, 3, bias=False))
        _init_weights(self)
        # the mask's bias (the conv has none, as in the authors' code): starts near "keep everything"
        self.keep_bias = nn.Parameter(torch.tensor(KEEP_LOGIT_INIT)) if output == "blend" else None

    def forward(self, image: torch.Tensor, gaze_code: torch.Tensor) -> torch.Tensor:
        tiled = gaze_code[:, :, None, None].expand(-1, -1, *image.shape[-2:]).to(image.dtype)
        out = self.decoder(self.blocks(self.encoder(torch.cat([image, tiled], 1))))
        painted = torch.tanh(out[:, :3])
        if self.keep_bias is None:
            return painted
        keep = torch.sigmoid(out[:, 3:] + self.keep_bias)
        return keep * image + (1 - keep) * painted


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
        self.generator = Generator(config.generator_widths, config.n_res_blocks, output=config.generator_output)
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


# ----------------------------------------------------------------------------------------------
# Losses
# ----------------------------------------------------------------------------------------------
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


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) → (B, C, C) per-image Gram matrices ``φ φᵀ / (H·W·C)`` (the official ``gram``)."""
    B, C, H, W = features.shape
    flat = features.reshape(B, C, H * W)
    return flat @ flat.transpose(1, 2) / (H * W * C)


def content_loss(fake_features: torch.Tensor, target_features: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of activations (official: ``l2_loss · 2 / size``)."""
    return F.mse_loss(fake_features, target_features)


def style_loss(fake_features: list[torch.Tensor], target_features: list[torch.Tensor]) -> torch.Tensor:
    """Σ over layers of ``‖Gram(fake) − Gram(target)‖² / (number of activations of the layer)``."""
    return sum((gram_matrix(f) - gram_matrix(t)).square().sum() / f.numel()
               for f, t in zip(fake_features, target_features))


class VGG16Perceptual(nn.Module):
    """ImageNet VGG-16 (offline weights, frozen) → the activations (after ReLU) He et al. compare:
    conv1_2, conv2_2, conv3_3, conv4_3 for style and conv5_3 for content. Raises
    :class:`~eyegen_lib.backbones.BackboneWeightsNotFound` (saying where to put the file) without them."""

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


# ----------------------------------------------------------------------------------------------
# Training data
# ----------------------------------------------------------------------------------------------
PAIR_KEYS = ("source", "target", "source_gaze", "target_gaze")


def pairs_to_tensors(pairs):
    """Redirection pairs as :func:`train_gaze_gan` takes them: the dict of
    :func:`eyegen_lib.data.pairs.render_redirection_pairs` (border 0; its landmarks are not used) and
    :class:`~eyegen_lib.data.pairs.PairRows` pass through, a
    :class:`~eyegen_lib.data.datasets.RedirectionPairs` is stacked."""
    if isinstance(pairs, (dict, PairRows)):
        return pairs
    items = [pairs[k] for k in range(len(pairs))]
    if not items:
        raise ValueError("no redirection pairs to train on")
    return {k: torch.stack([it[k] for it in items]) for k in PAIR_KEYS}


def _check_pairs(data, config: GazeGANConfig) -> None:
    rows, meta = pair_parts(data, ("source", "target"))
    n = len(rows)
    if n == 0 or any(len(meta[k]) != n for k in ("source_gaze", "target_gaze")):
        raise ValueError("source, target and both gazes must hold the same (non-zero) number of pairs")
    H, W = config.image_size
    probe = rows.fetch([0])
    for k in ("source", "target"):
        if tuple(probe[k].shape[1:]) != (3, H, W):
            raise ValueError(f"{k} images must be (N, 3, {H}, {W}) for this config, got {(n, *probe[k].shape[1:])} "
                             "(render pairs with border=0 at the config's image_size)")
    for k in ("source_gaze", "target_gaze"):
        if tuple(meta[k].shape) != (n, 2):
            raise ValueError(f"{k} must be (N, 2) = (pitch, yaw) radians, got {tuple(meta[k].shape)}")


class IterationBatches(BatchSource):
    """Batch i holds the mini-batches of one training iteration (``n_minibatches`` = n_critic for
    the critic + 1 for the generator), stacked on a leading axis: ``source``/``target`` (n, B, 3,
    H, W) in [−1, 1] and ``source_gaze``/``target_gaze`` (n, B, 2) radians. Each mini-batch is B
    distinct pairs of this process's shard, drawn uniformly from the (seed, rank, i) stream. Pairs
    come from :func:`~eyegen_lib.data.pairs.pair_parts` (uint8 in memory, or rendered when drawn)."""

    def __init__(self, data, *, batch_size: int, n_minibatches: int, seed: int = 0, dist: DistInfo | None = None):
        self.data, meta = pair_parts(data, ("source", "target"))
        self.source_gaze, self.target_gaze = meta["source_gaze"].float(), meta["target_gaze"].float()
        super().__init__(len(self.data), seed=seed, dist=dist)
        self.batch_size = min(batch_size, len(self.rows))
        self.n_minibatches = n_minibatches

    def sample_ids(self, step: int) -> torch.Tensor:
        g = self.generator(step)
        return torch.stack([self.rows[torch.randperm(len(self.rows), generator=g)[: self.batch_size]]
                            for _ in range(self.n_minibatches)])

    def raw(self, step: int):
        picks = self.sample_ids(step)
        rows, where = torch.unique(picks, return_inverse=True)  # a pair in two mini-batches is fetched once
        return {"rows": self.data.fetch(rows), "where": where, "picks": picks}

    def assemble(self, raw):
        got, where, picks = raw["rows"], raw["where"], raw["picks"]
        return {"source": to_signed(got["source"][where]), "target": to_signed(got["target"][where]),
                "source_gaze": self.source_gaze[picks], "target_gaze": self.target_gaze[picks]}

    def batch(self, step: int):
        return self.assemble(self.raw(step))


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
def linear_decay(steps: int, decay_start: float):
    """LambdaLR factor: 1 until ``decay_start · steps``, then linearly to 0 at ``steps`` (official:
    ``lr · (2 − 2·epoch / epochs)`` in the second half)."""
    start = int(decay_start * steps)

    def factor(step: int) -> float:
        return 1.0 if step < start else max(0.0, (steps - step) / max(1, steps - start))

    return factor


@contextlib.contextmanager
def _frozen(module: nn.Module):
    """No parameter gradients for ``module`` inside the block (the generator step keeps D fixed)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


class GazeGANTrainer(Trainer):
    """WGAN-GP with a gaze head, cycle and perceptual losses; Adam (lr, β1, β2) for both networks,
    and the linear decay as ``schedulers`` (stepped once per iteration).

    ``train_step`` takes the stacked mini-batches of :class:`IterationBatches`: ``n_critic`` calls of
    :meth:`discriminator_step`, then one of :meth:`generator_step`. It returns the critic's losses
    averaged over its steps (``d_adv``, ``d_gp``, ``d_gaze``) and the generator's (``g_adv``,
    ``g_gaze``, ``g_cycle``, ``g_content``, ``g_style``), each multiplied by its λ; a term whose λ is
    0 is neither computed nor returned. ``perceptual`` is the VGG-16 feature extractor (built from the
    offline weights when not given; never loaded when λ_perceptual is 0)."""

    def __init__(self, model: GazeGAN, config: GazeGANConfig | None = None, *,
                 perceptual: VGG16Perceptual | None = None, **kwargs):
        config = config or model.config
        betas = (config.beta1, config.beta2)
        opts = {"generator": torch.optim.Adam(model.generator.parameters(), lr=config.lr, betas=betas),
                "discriminator": torch.optim.Adam(model.discriminator.parameters(), lr=config.lr, betas=betas)}
        decay = linear_decay(config.steps, config.decay_start)
        schedulers = {k: torch.optim.lr_scheduler.LambdaLR(o, decay) for k, o in opts.items()}
        super().__init__({"generator": model.generator, "discriminator": model.discriminator}, opts,
                         schedulers=schedulers, **kwargs)
        self.config = config
        self.perceptual = None
        if config.lambda_perceptual > 0:
            self.perceptual = (perceptual or VGG16Perceptual()).to(self.device)

    def _code(self, gaze: torch.Tensor) -> torch.Tensor:
        return gaze_to_code(gaze, self.config.gaze_scale_deg)

    def discriminator_step(self, batch: dict) -> dict[str, float]:
        """One critic update on a mini-batch: WGAN + λ_gp·GP (+ λ_gaze·gaze MSE on the real images)."""
        c, d, opt = self.config, self.models["discriminator"], self.optimizers["discriminator"]
        real = batch["source"]
        with torch.no_grad():
            fake = self.module("generator")(real, self._code(batch["target_gaze"]))
        mixed = random_interpolates(real, fake)
        # one pass over real ⊕ fake ⊕ interpolates: exact, since the critic treats samples independently
        scores, gaze = d(torch.cat([real, fake, mixed]))
        real_scores, fake_scores, mixed_scores = scores.split(len(real))
        losses = {"d_adv": wgan_critic_loss(real_scores, fake_scores),
                  "d_gp": c.lambda_gp * gradient_penalty(mixed_scores, mixed)}
        if c.lambda_gaze > 0:
            losses["d_gaze"] = c.lambda_gaze * F.mse_loss(gaze[: len(real)], self._code(batch["source_gaze"]))
        opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        opt.step()
        return {k: v.detach().item() for k, v in losses.items()}

    def generator_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        """The generator's named losses on a mini-batch (each × its λ, with their graphs), the
        discriminator fixed: what :meth:`generator_step` minimises."""
        c, g = self.config, self.models["generator"]
        source, target = batch["source"], batch["target"]
        fake = g(source, self._code(batch["target_gaze"]))
        with _frozen(self.module("discriminator")) as d:  # bare: under DDP only G's gradients are reduced here
            scores, gaze = d(fake)
        losses = {"g_adv": -scores.mean()}
        if c.lambda_gaze > 0:
            losses["g_gaze"] = c.lambda_gaze * F.mse_loss(gaze, self._code(batch["target_gaze"]))
        # the second and third passes through G use the bare module: one DDP forward per backward
        if c.lambda_cycle > 0:
            back = self.module("generator")(fake, self._code(batch["source_gaze"]))
            losses["g_cycle"] = c.lambda_cycle * F.l1_loss(back, source)
        if c.lambda_identity > 0:
            same = self.module("generator")(source, self._code(batch["source_gaze"]))
            losses["g_identity"] = c.lambda_identity * F.l1_loss(same, source)
        if c.lambda_perceptual > 0:
            content, style = self.perceptual.losses(fake, target, c.vgg_input)
            losses["g_content"] = c.lambda_perceptual * content
            losses["g_style"] = c.lambda_perceptual * style
        return losses

    def generator_step(self, batch: dict) -> dict[str, float]:
        """One generator update on a mini-batch, the discriminator fixed."""
        opt = self.optimizers["generator"]
        losses = self.generator_losses(batch)
        opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        opt.step()
        return {k: v.detach().item() for k, v in losses.items()}

    def train_step(self, batch: dict) -> dict[str, float]:
        n = self.config.n_critic + 1
        if batch["source"].ndim != 5 or len(batch["source"]) != n:
            raise ValueError(f"a training iteration needs n_critic + 1 = {n} stacked mini-batches (IterationBatches), "
                             f"got source of shape {tuple(batch['source'].shape)}")
        minibatches = [{k: v[i] for k, v in batch.items()} for i in range(n)]
        critic = [self.discriminator_step(mb) for mb in minibatches[:-1]]
        logs = {k: sum(log[k] for log in critic) / len(critic) for k in critic[0]}
        logs.update(self.generator_step(minibatches[-1]))
        return logs


def gaze_gan_run(pairs, config: GazeGANConfig, *, seed: int = 0, device=None, perceptual: VGG16Perceptual | None = None,
                 dist: DistInfo | None = None) -> TrainingRun:
    """A training run of a GazeGAN on redirection ``pairs`` (see :func:`pairs_to_tensors`): WGAN-GP
    with its gaze head, cycle and perceptual losses, and the linear decay of the learning rate."""
    data = pairs_to_tensors(pairs)
    _check_pairs(data, config)
    dist = dist or init_distributed()
    model = GazeGAN(config)
    trainer = GazeGANTrainer(model, config, perceptual=perceptual, device=device, dist_info=dist)
    batches = IterationBatches(data, batch_size=config.batch_size, n_minibatches=config.n_critic + 1, seed=seed, dist=dist)
    return TrainingRun(trainer, batches, model)


def train_gaze_gan(pairs, config: GazeGANConfig, *, seed: int = 0, device=None, progress: bool = True, on_log=None,
                   log_every: int | None = None, perceptual: VGG16Perceptual | None = None):
    """Train in memory for ``config.steps`` iterations (no checkpoint; :func:`eyegen_lib.registry.gaze_gan`
    keeps one). Returns (model in eval mode, history of {step, d_*, g_*})."""
    torch.manual_seed(seed)
    return gaze_gan_run(pairs, config, seed=seed, device=device, perceptual=perceptual).fit(
        config.steps, log_every=log_every, desc="gaze GAN", on_log=on_log, progress=progress)


# ----------------------------------------------------------------------------------------------
# Inference
# ----------------------------------------------------------------------------------------------
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


def redirect_set(model: GazeGAN, rset, *, batch_size: int = 256, progress: bool = False) -> torch.Tensor:
    """Predictions for an :class:`~eyegen_lib.evaluation.RedirectionSet` (uint8, the set's order)."""
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
