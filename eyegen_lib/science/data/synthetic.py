"""Dataset-level API of the procedural eye renderer: a seeded, random-access source of eye images.

``SyntheticEyes(SyntheticEyeSpec(modality="nir"))[i]`` is an OpenEDS-like frame with its
4-class mask, 7 DeepWarp landmarks, a 64-point eyelid contour, the gaze label, the person id and
the eye side; ``modality="rgb"`` gives Columbia-like colour eye patches with the same labels.

Sample ``i`` belongs to person ``i // images_per_person``; within a person, even local indices
are right eyes and odd ones left eyes (OpenEDS records both eyes of everyone). A person's
identity (eye shape, skin, iris, lashes…) is shared by both eyes; the camera side adds its own
features. Everything is a pure function of (``seed``, index): per-person draws come from
``rng_for(seed, purpose, person)`` and per-image draws from ``rng_for(seed, purpose, index)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ...core.memory import reuse_freed_memory
from . import eye_model as em
from . import render_nir, render_rgb

__all__ = ["SyntheticEyeSpec", "SyntheticEyes", "DEFAULT_SIZES", "sample_state", "RENDERER_VERSIONS"]

# Part of every artifact's data fingerprint, one per modality: bump a modality's version whenever a
# change to its renderer changes the images or labels a spec produces, so that models trained on the
# old images are retrained (and models of the other modality are not).
# nir 2026.12-2: the eye lower, smaller and less open in the frame, smaller pupils, per-image exposure (issue 29).
# nir 2026.12-3: the iris larger against the eyeball (the headset's view through the cornea), the eye a
# little larger: every real OpenEDS figure found inside the rendered 5–95 % range (issue 29).
RENDERER_VERSIONS = {"nir": "2026.12-3", "rgb": "2026.12-1"}

DEFAULT_SIZES = {"nir": (400, 640), "rgb": (64, 64)}
MIN_SIDE = 8  # pixels: smaller images have no room for an eye (and the renderer's blur needs 5 taps)

# Purposes for rng_for: keep them distinct so that no two kinds of draw share a stream.
_GEOMETRY, _LOOK, _SIDE_LOOK, _STATE, _TEXTURE, _NOISE = range(6)


@dataclass(frozen=True)
class SyntheticEyeSpec:
    modality: str                                # "nir" or "rgb"
    size: tuple[int, int] | None = None          # (rows, cols); None → (400, 640) nir, (64, 64) rgb
    n_persons: int = 8
    images_per_person: int = 32
    seed: int = 0
    gaze_range_deg: tuple[float, float] = (25.0, 30.0)   # (max |pitch|, max |yaw|) of random gaze
    blink_probability: float = 0.05              # share of images caught mid-blink
    noise: bool = True                           # sensor noise
    flip_right: bool = False                     # rgb: render right eyes mirrored, as He et al. do
    stages: tuple[str, ...] = field(default=render_nir.ALL_STAGES)

    def __post_init__(self):
        if self.modality not in DEFAULT_SIZES:
            raise ValueError(f"modality must be 'nir' or 'rgb', got {self.modality!r}")
        if self.size is None:
            object.__setattr__(self, "size", DEFAULT_SIZES[self.modality])
        if len(tuple(self.size)) != 2 or any(int(s) != s or s < MIN_SIDE for s in self.size):
            raise ValueError(f"size must be (rows, cols), whole numbers of at least {MIN_SIDE} pixels each, "
                             f"got {tuple(self.size)}")
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        for name in ("n_persons", "images_per_person"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.blink_probability <= 1.0:
            raise ValueError(f"blink_probability is a probability, got {self.blink_probability}")


def _clip(x: float, lo: float, hi: float) -> float:
    """``np.clip`` of one float, exactly, without numpy's per-call cost (it runs per image)."""
    return float(min(max(x, lo), hi))


def sample_state(rng: np.random.Generator, gaze_range_deg, mirror: bool, blink_probability: float) -> dict:
    """One image's state (see :data:`eye_model.STATE_KEYS`). Gaze concentrates near the centre
    (people mostly look ahead in a headset) with a uniform tail up to the range's edge."""
    max_p, max_y = np.deg2rad(gaze_range_deg)
    if rng.random() < 0.6:
        pitch, yaw = np.minimum(np.maximum(rng.normal(0, 0.45, 2), -1.0), 1.0) * (max_p, max_y)  # = np.clip, cheaper
    else:
        pitch, yaw = rng.uniform(-1, 1, 2) * (max_p, max_y)
    blinking = rng.random() < blink_probability
    return {
        "pitch": pitch, "yaw": yaw, "mirror": float(mirror),
        "pupil_scale": float(np.exp(rng.normal(0, 0.13))),
        "openness": _clip(rng.normal(1.0, 0.05), 0.85, 1.12),
        "blink": float(rng.uniform(0.25, 1.0)) if blinking else 0.0,
        "shift_x": rng.normal(0, 0.04), "shift_y": rng.normal(0, 0.04),
        "scale": _clip(rng.normal(1.0, 0.02), 0.95, 1.05),
        "glint_dx": rng.normal(0, 0.012), "glint_dy": rng.normal(0, 0.012),
        "noise_x": int(rng.integers(0, 1 << 30)), "noise_y": int(rng.integers(0, 1 << 30)),
        # Camera per image (drawn last, so the draws above are those of earlier versions):
        # focus varies around the person's defocus, the sensor noise around its level.
        "defocus": float(np.exp(_clip(rng.normal(0, 0.22), -0.5, 0.5))),
        "noise_gain": float(np.exp(_clip(rng.normal(0, 0.3), -0.7, 0.7))),
        # A headset camera's auto-exposure flickers a little from frame to frame around the person's
        # session exposure (NIR renderer 2026.12-2; RGB ignores it).
        "exposure_flicker": float(np.exp(_clip(rng.normal(0, 0.03), -0.08, 0.08))),
    }


# Per-image state entries beyond eye_model.STATE_KEYS (camera): renderers treat them as optional.
CAMERA_KEYS = ("defocus", "noise_gain", "exposure_flicker")


class SyntheticEyes:
    """Random-access renderer-backed dataset; ``len = n_persons * images_per_person``.

    ``device``: where :meth:`render` draws (default the CPU). The renderer is plain tensor code, so on
    a GPU it runs as on the CPU, and its images equal the CPU's within float tolerance (a GPU's
    transcendental functions and texture lookups round differently, which may move a pixel by a
    grey level after quantisation). Per-person textures are drawn on the CPU (numpy) and uploaded
    once (see :mod:`~eyegen_lib.science.data.texture_cache`)."""

    def __init__(self, spec: SyntheticEyeSpec, device: str | torch.device | None = None):
        self.spec = spec
        self.device = torch.device(device if device is not None else "cpu")
        self._persons: dict[tuple[int, str], tuple[dict, dict]] = {}
        self._tex_seeds: dict[int, int] = {}
        self._noise_bank: torch.Tensor | None = None
        self._noise_banks: dict = {}
        self._textures = render_nir.NIRTextureCache() if spec.modality == "nir" else render_rgb.RGBTextureCache()

    def __len__(self) -> int:
        return self.spec.n_persons * self.spec.images_per_person

    def person_of(self, index: int) -> int:
        return int(index) // self.spec.images_per_person

    def side_of(self, index: int) -> str:
        """'R' for even local indices of a person, 'L' for odd ones."""
        return "R" if (int(index) % self.spec.images_per_person) % 2 == 0 else "L"

    # -- parameters ------------------------------------------------------------------------------
    def person_params(self, person: int, side: str) -> tuple[dict, dict]:
        """(geometry, look) floats of one person seen by the ``side`` camera."""
        key = (int(person), side)
        if key not in self._persons:
            s = self.spec.seed
            geom = em.sample_geometry(em.rng_for(s, _GEOMETRY, person))
            look_rng = em.rng_for(s, _LOOK, person)
            side_rng = em.rng_for(s, _SIDE_LOOK, person, side == "L")
            if self.spec.modality == "nir":
                look = render_nir.sample_nir_look(look_rng, side, side_rng)
            else:
                look = render_rgb.sample_rgb_look(look_rng)
            self._persons[key] = (geom, look)
        return self._persons[key]

    def _tex_seed(self, person: int) -> int:
        if person not in self._tex_seeds:
            self._tex_seeds[person] = int(em.rng_for(self.spec.seed, _TEXTURE, person).integers(1 << 62))
        return self._tex_seeds[person]

    def image_state(self, index: int) -> dict:
        mirror = self.side_of(index) == "L"
        if self.spec.modality == "rgb" and self.spec.flip_right:
            mirror = not mirror
        return sample_state(em.rng_for(self.spec.seed, _STATE, index), self.spec.gaze_range_deg,
                            mirror, self.spec.blink_probability)

    def _noise(self, states: list[dict], shape: tuple[int, ...], device: torch.device) -> list[torch.Tensor]:
        """Unit sensor noise per image: a crop (a view) of a seeded noise bank at an offset drawn per
        image (the bank is drawn on the CPU, so every device sees the same noise). The renderer
        stacks one chunk's crops at a time: a batch's would be one more big allocation (33 MB at
        400 × 640, above glibc's largest mmap threshold, so mapped and faulted in anew each batch)."""
        pad = 97
        if self._noise_bank is None or self._noise_bank.shape[-2] < shape[-2] + pad or self._noise_bank.shape[-1] < shape[-1] + pad:
            gen = torch.Generator().manual_seed(int(em.rng_for(self.spec.seed, _NOISE).integers(1 << 62)))
            self._noise_bank = torch.randn(*shape[:-2], shape[-2] + pad, shape[-1] + pad, generator=gen, device="cpu")
            self._noise_banks = {}
        if device not in self._noise_banks:
            self._noise_banks[device] = self._noise_bank.to(device)
        bank = self._noise_banks[device]
        crops = []
        for st in states:
            oy = st["noise_y"] % (bank.shape[-2] - shape[-2] + 1)
            ox = st["noise_x"] % (bank.shape[-1] - shape[-1] + 1)
            crops.append(bank[..., oy:oy + shape[-2], ox:ox + shape[-1]])
        return crops

    # -- rendering -------------------------------------------------------------------------------
    def render(self, indices, *, gaze=None, overrides: dict | None = None, stages=None,
               return_layers: bool = False, device: str | torch.device | None = None) -> dict:
        """Render a batch. ``gaze``: optional (B, 2) (pitch, yaw) radians replacing the sampled
        gaze (everything else about the image stays identical); ``overrides``: per-image
        parameter overrides by name — any key of the state (e.g. ``pupil_scale``, ``openness``,
        ``blink``), of the person geometry (e.g. ``iris_radius``) or of the look — as a scalar
        or a (B,) sequence. ``stages``: see ``render_nir.ALL_STAGES``. ``device``: where to draw
        (default: the dataset's); every returned tensor lies there."""
        device = torch.device(device) if device is not None else self.device
        reuse_freed_memory()        # a render's temporaries come from reused pages, not fresh ones
        if device.type == "cpu":    # torch's default: no device mode, whose per-op dispatch costs ~25 %
            return self._render(indices, gaze, overrides, stages, return_layers, device)
        with torch.device(device):  # every tensor the renderer makes is made there
            return self._render(indices, gaze, overrides, stages, return_layers, device)

    def _render(self, indices, gaze, overrides, stages, return_layers, device: torch.device) -> dict:
        idx = [int(i) for i in torch.as_tensor(indices, device="cpu").reshape(-1).tolist()]
        if any(i < 0 or i >= len(self) for i in idx):
            raise IndexError(f"indices must lie in [0, {len(self)})")
        if not idx:
            raise ValueError("render needs at least one index, got none")
        persons = [self.person_of(i) for i in idx]
        sides = [self.side_of(i) for i in idx]
        states = [self.image_state(i) for i in idx]
        rows = [self.person_params(p, s) for p, s in zip(persons, sides)]
        geom = em.stack_params([r[0] for r in rows])
        look = em.stack_params([r[1] for r in rows])
        state = em.stack_params(states, em.STATE_KEYS + CAMERA_KEYS)
        if gaze is not None:
            gaze_t = torch.as_tensor(gaze, dtype=torch.float32).to(device).reshape(len(idx), 2)
            state["pitch"], state["yaw"] = gaze_t[:, 0].clone(), gaze_t[:, 1].clone()
        for name, value in (overrides or {}).items():
            target = next((d for d in (state, geom, look) if name in d), None)
            if target is None:
                raise KeyError(f"unknown override {name!r}")
            target[name] = torch.as_tensor(value, dtype=torch.float32).to(device).expand(len(idx)).clone()
        stages = tuple(stages) if stages is not None else self.spec.stages
        if self.spec.modality == "nir":
            out = self._render_nir(persons, sides, rows, geom, look, state, states, stages, return_layers, device)
        else:
            out = self._render_rgb(persons, rows, geom, look, state, states, stages, return_layers, device)
        out.update(gaze=torch.stack([state["pitch"], state["yaw"]], -1),
                   person=torch.tensor(persons, dtype=torch.int64), side=sides,
                   index=torch.tensor(idx, dtype=torch.int64))
        return out

    def _render_nir(self, persons, sides, rows, geom, look, state, states, stages, return_layers, device):
        size = self.spec.size
        s = self.spec.seed
        textures, frames = [], []
        lid_level = render_nir.lid_levels_by_person(persons, render_nir.frame_placement(look, state, size)[2])
        for p, side, (g_row, l_row) in zip(persons, sides, rows):
            tex_seed = self._tex_seed(p)
            textures.append(self._textures.person((s, p), tex_seed, g_row, l_row, device, lid_level[p]))
            frames.append(self._textures.frame((s, p), side, tex_seed + 1, l_row, size, device))
        noise = self._noise(states, size, device) if self.spec.noise else None
        out = render_nir.render_eye(geom, look, state, size, textures, frames, noise, stages, return_layers,
                                    quantize=True)
        out["image"] = out["image"][:, None]
        return out

    def _render_rgb(self, persons, rows, geom, look, state, states, stages, return_layers, device):
        s = self.spec.seed
        textures = []
        lid_level = render_nir.lid_levels_by_person(persons, render_rgb.patch_placement(geom, state, self.spec.size)[2])
        for p, (g_row, l_row) in zip(persons, rows):
            textures.append(self._textures.person((s, p), self._tex_seed(p), g_row, l_row, device, lid_level[p]))
        noise = self._noise(states, (3, *self.spec.size), device) if self.spec.noise else None
        out = render_rgb.render_eye(geom, look, state, self.spec.size, textures, noise, stages, return_layers,
                                    quantize=True)
        return out

    def __getitem__(self, index: int) -> dict:
        out = self.render([int(index)])
        return {k: (v[0] if isinstance(v, (torch.Tensor, list)) else v) for k, v in out.items()}
