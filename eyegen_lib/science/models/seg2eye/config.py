"""Seg2Eye's configuration, derived from a run profile (paper widths and λs in ``paper``)."""
from __future__ import annotations

from dataclasses import dataclass

from ....core.profiles import Profile

__all__ = ["Seg2EyeConfig"]

# Generator blocks (in, out) as multiples of ngf — SPADE's head_0, G_middle_0/1, up_0..up_3:
# 1024 → 1024 → 1024 → 512 → 256 → 128 → 64 at ngf 64.
GEN_MULTS = ((16, 16), (16, 16), (16, 16), (16, 8), (8, 4), (4, 2), (2, 1))
# Nearest ×2 upsampling after these blocks (SPADE "normal": 5 upsamplings → start at 1/32).
UP_AFTER = (0, 2, 3, 4, 5)


@dataclass
class Seg2EyeConfig:
    image_size: tuple[int, int] = (400, 640)
    n_classes: int = 4
    ngf: int = 64
    ndf: int = 64
    spade_hidden: int = 128
    n_up: int = 5  # ×2 upsamplings: the generator starts at image_size / 2**n_up (rounded up)
    enc_channels: tuple[int, ...] = (64, 128, 256, 512, 512, 512)
    style_dim: int = 16
    k_style: int = 4
    aggregation: str = "max"  # "max" (paper) or "mean" (ablation)
    use_style: bool = True  # False: the plain GauGAN baseline (SPADE only, starting from one downsampled style image)
    # "official": BatchNorm in SPADE, style x·(1+s)+b on the raw x, (s, b) = LeakyReLU(FC(w)) — the authors' code;
    # "paper": instance norm and AdaIN on the normalised x with a plain FC — the paper's text (normalization.py)
    normalisation: str = "official"
    n_scales: int = 2
    d_layers: int = 4
    lambda_fm: float = 10.0
    lambda_l2: float = 15.0
    lambda_style: float = 0.5  # style-code consistency (0 = ablation "no style consistency")
    lambda_gram: float = 1e5
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.9
    steps: int = 100_000
    ablation_steps: int = 100_000  # each ablation's training length (compared with Seg2Eye's snapshot at that step)
    batch_size: int = 1

    def __post_init__(self):
        if self.aggregation not in ("max", "mean"):
            raise ValueError(f"aggregation must be 'max' or 'mean', got {self.aggregation!r}")
        if self.normalisation not in ("official", "paper"):
            raise ValueError(f"normalisation must be 'official' (the authors' code) or 'paper' (the paper's text), "
                             f"got {self.normalisation!r}")
        if not 0 <= self.n_up <= len(UP_AFTER):
            raise ValueError(f"n_up must be in 0..{len(UP_AFTER)}, got {self.n_up}")

    @property
    def gen_channels(self) -> list[tuple[int, int]]:
        return [(a * self.ngf, b * self.ngf) for a, b in GEN_MULTS]

    @property
    def up_after(self) -> tuple[int, ...]:
        """Blocks followed by a ×2 upsampling: the last ``n_up`` of SPADE's five."""
        return UP_AFTER[len(UP_AFTER) - self.n_up:]

    @property
    def start_size(self) -> tuple[int, int]:
        return tuple(-(-s // 2 ** self.n_up) for s in self.image_size)

    @classmethod
    def for_profile(cls, profile: Profile, **overrides) -> "Seg2EyeConfig":
        """Paper widths at ``paper``; narrower (profile.width) and with fewer upsamplings at the small
        profiles' 40×64 / 80×128, so the generator still starts at 5×8 px (1/32 of 40×64 would be ~1 px)."""
        h, w = profile.nir_size
        n_up = 5
        while n_up > 0 and min(h, w) / 2 ** n_up < 4:
            n_up -= 1
        # style encoder: stride-2 layers while the feature map keeps ≥ 2 px (instance norm needs > 1)
        enc, size = [], min(h, w)
        for c in (64, 128, 256, 512, 512, 512):
            if -(-size // 2) < 2:
                break
            size = -(-size // 2)
            enc.append(profile.width(c))
        small = not profile.paper_shapes
        # The generator is the costliest part (SPADE convs at every scale): on CPU it runs at half the
        # profile's width (ngf 8, SPADE hidden 16 at cpu), so that Seg2Eye and its three ablations
        # train within the cpu profile's 20-minute budget on two cores.
        narrow = 0.5 if small else 1.0
        kw = dict(image_size=(h, w), ngf=profile.width(64 * narrow, minimum=4), ndf=profile.width(64),
                  spade_hidden=profile.width(128 * narrow, minimum=8), n_up=n_up, enc_channels=tuple(enc),
                  # the small profiles train far shorter: faster learning rates (TTUR ratio kept)
                  **profile.schedule("seg2eye"))
        kw.update(overrides)
        return cls(**kw)
