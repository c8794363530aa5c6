"""DeepWarp's variants and configuration (the paper's shapes; each profile's sizes)."""
from __future__ import annotations

from dataclasses import dataclass

from ....core.profiles import Profile

__all__ = ["VARIANTS", "N_LANDMARKS", "DeepWarpConfig"]

VARIANTS = ("ss", "ms", "cfw", "cfw_lcm", "cfw_lcm_palette")
N_LANDMARKS = 7


@dataclass
class DeepWarpConfig:
    variant: str = "cfw_lcm"
    image_size: tuple[int, int] = (41, 51)  # (rows, cols): the paper's W × H = 51 × 41
    angle_dims: int = 2  # 2: (pitch, yaw) redirection; 1: vertical only (pitch; yaw must be 0)
    angle_embedding: int = 16  # FC16-ReLU-FC16-ReLU → 16 constant maps
    widths: tuple[int, int, int, int] = (16, 32, 32, 32)  # conv5×5, 3×3, 3×3, 1×1 of a warping module
    lcm_width: int = 16  # hidden channels of the lightness correction module
    n_palette: int = 3  # cfw_lcm_palette: learned colours mixed in besides the warped image
    max_flow_px: float = 12.0  # tanh × this: the largest displacement one flow head can predict
    # §4.5: ground truth k px larger on each side, loss = min over (2k + 1)² shifts; 0 = plain loss
    # (the paper's main objective). It makes the loss blind to global shifts of up to k px, so on
    # perfectly registered pairs a model drifts by a pixel or two (measured: a (1, 1) px drift that
    # makes its plain MSE worse than the unchanged input); use it on misaligned pairs.
    registration_k: int = 0
    distance: str = "l2"  # "l2" (the paper's objective) or "l1" (§4.5: slightly sharper)
    lr: float = 1e-3
    batch_size: int = 128  # the paper's
    steps: int = 20_000
    angle_bins: int = 15  # §4.2: the correction range split into 15 bins, sampled uniformly
    hard_tilt_deg: float = 8.0  # §4.2: an eye tilted by at least this much is "hard"
    hard_share: float = 0.25  # §4.2: 8 hard of 32 examples per bin

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown DeepWarp variant {self.variant!r}: choose one of {VARIANTS}")
        if self.angle_dims not in (1, 2):
            raise ValueError(f"angle_dims must be 1 (pitch only) or 2 (pitch, yaw), got {self.angle_dims}")
        if len(self.widths) != 4:
            raise ValueError(f"widths are the 4 conv widths of a warping module, got {self.widths}")
        if self.registration_k < 0:
            raise ValueError(f"registration_k must be ≥ 0, got {self.registration_k}")
        if self.distance not in ("l1", "l2"):
            raise ValueError(f"distance must be 'l1' or 'l2', got {self.distance!r}")
        if not 0 <= self.hard_share < 1:
            raise ValueError(f"hard_share must be in [0, 1), got {self.hard_share}")
        self.image_size = tuple(int(s) for s in self.image_size)
        self.widths = tuple(int(w) for w in self.widths)

    @property
    def lcm(self) -> str | None:
        """None, "white" (eq. 6) or "palette"."""
        return {"cfw_lcm": "white", "cfw_lcm_palette": "palette"}.get(self.variant)

    @classmethod
    def for_profile(cls, profile: Profile, **overrides) -> "DeepWarpConfig":
        """The paper's widths at every profile (the model is tiny: ≈ 30 k parameters for SS, 70 k
        for CFW + LCM); the small profiles train shorter, on smaller batches, at a higher learning
        rate. A CFW + LCM step at batch 32 costs ≈ 0.5 s on one CPU core (SS ≈ 0.25 s), so ``cpu``'s
        400 steps take about 1–3 minutes per variant on a 2-core laptop; ``smoke`` a few seconds."""
        kw = profile.schedule("deepwarp")
        kw.update(overrides)
        return cls(**kw)
