"""The gaze GAN's configuration (the paper's shapes and weights, each profile's sizes), its loss
names and ablations, and how gaze is coded for the networks."""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ....core.checkpoint import field_added_later
from ....core.profiles import PAPER_GAZE_GAN_STEPS, Profile

__all__ = ["GazeGANConfig", "gaze_to_code", "code_to_gaze", "GENERATOR_WIDTHS", "DISCRIMINATOR_WIDTHS", "PAPER_GENERATOR_STEPS",
           "D_LOSS_KEYS", "G_LOSS_KEYS", "VGG_INPUTS", "GENERATOR_OUTPUTS", "GENERATOR_UPSAMPLINGS", "KEEP_LOGIT_INIT", "ABLATIONS"]

GENERATOR_WIDTHS = (64, 128, 256)  # conv7×7, then the two stride-2 convs (the residual blocks keep the last)
DISCRIMINATOR_WIDTHS = (64, 128, 256, 512, 1024)  # one stride-2 conv4×4 each: 64 px → 2 px
# 300 epochs of Columbia's frontal training pairs (50 subjects × 2 eyes × 21 × 21 = 44,100) at batch 32,
# one generator update per 5 critic updates (one batch each): ≈ 82,700 generator updates.
PAPER_GENERATOR_STEPS = PAPER_GAZE_GAN_STEPS
# The named losses train_step returns; each is already multiplied by its λ, so a side's keys sum to
# its objective. A term whose λ is 0 is absent.
D_LOSS_KEYS = ("d_adv", "d_gp", "d_gaze")
G_LOSS_KEYS = ("g_adv", "g_gaze", "g_cycle", "g_content", "g_style", "g_identity", "g_target")
VGG_INPUTS = ("official", "imagenet")  # how the perceptual loss's VGG-16 sees the images (package doc)
GENERATOR_OUTPUTS = ("image", "blend")  # what the generator's last layer makes (Generator's doc)
# how the generator's decoder doubles its resolution: "deconv" (the authors' 4×4 stride-2 transposed
# convs) or "resize" (nearest ×2 then a 3×3 conv: Odena et al. 2016's cure for checkerboard artefacts)
GENERATOR_UPSAMPLINGS = ("deconv", "resize")
field_added_later("generator_upsampling", "deconv")
# every gaze GAN saved before the switch existed repainted the patch: such an artifact serves "image" runs
field_added_later("generator_output", "image")
field_added_later("lambda_target", 0.0)
KEEP_LOGIT_INIT = 2.0  # σ(2) ≈ 0.88: a fresh "blend" generator keeps most of each input pixel
# §5.5's ablations: one model per removed loss term (config overrides of the full model); "no_identity"
# and "no_target" remove our two added terms, and "authors" undoes all our departures: their generator
# (repainting, deconvs) and objective.
ABLATIONS = {"full": {}, "no_perceptual": {"lambda_perceptual": 0.0}, "no_cycle": {"lambda_cycle": 0.0},
             "no_gaze": {"lambda_gaze": 0.0}, "no_identity": {"lambda_identity": 0.0}, "no_target": {"lambda_target": 0.0},
             "authors": {"generator_output": "image", "lambda_identity": 0.0, "lambda_target": 0.0,
                         "generator_upsampling": "deconv"}}



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
    # × L1(G(x_s, g_t), x_t): the paired target's pixels, as pix2pix trains a paired translation. Not in
    # the authors' code (their only pull towards the target is VGG's): without it the keep mask stays shut and
    # the painted image untrained (issue 27, the module doc); 0 restores the authors' objective ("no_target")
    lambda_target: float = 50.0
    vgg_input: str = "official"  # "official": [−1, 1] as the TF code fed it; "imagenet": normalised (see module doc)
    # "blend" (ours): the input kept through a learned mask; "image": the authors' generator, which repaints
    # every pixel (the "authors" variant). See Generator and the module doc
    generator_output: str = "blend"
    generator_upsampling: str = "resize"  # ours (issue 27); "deconv": the authors' (GENERATOR_UPSAMPLINGS)
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
        for name in ("lambda_gp", "lambda_gaze", "lambda_cycle", "lambda_perceptual", "lambda_identity", "lambda_target"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        if self.vgg_input not in VGG_INPUTS:
            raise ValueError(f"vgg_input must be one of {VGG_INPUTS}, got {self.vgg_input!r}")
        if self.generator_output not in GENERATOR_OUTPUTS:
            raise ValueError(f"generator_output must be one of {GENERATOR_OUTPUTS}, got {self.generator_output!r}")
        if self.generator_upsampling not in GENERATOR_UPSAMPLINGS:
            raise ValueError(f"generator_upsampling must be one of {GENERATOR_UPSAMPLINGS}, got {self.generator_upsampling!r}")
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
