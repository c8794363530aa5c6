"""OpenEDS-like near-infrared eye frames (grey, native 400 × 640, renderable at any size).

What a real OpenEDS frame shows, and where it comes from here:

* a close-up of one eye from a VR-headset camera, the eye opening spanning ~55-65 % of the width
  (``eye_size``: eyeball radius as a fraction of the width);
* a dark circular lens vignette with a soft edge — the frame corners are near black
  (:func:`vignette_map`), and a dark head-mount/nose region on the nasal side whose strength,
  like the vignette centre and the glint ring's offset, differs between left and right cameras;
* a ring of 8-12 saturated LED glints on the cornea that moves with the cornea;
* bright skin (NIR reflects well off skin) with a crease above the upper lid and dark lashes;
* a mid-grey sclera darkening towards the corners, a textured darker iris, a near-black pupil.

:func:`render_eye` renders explicit parameter batches and can stop after any stage
(``"eyeball"``, ``"iris"``, ``"lids"``, ``"glints"``, ``"texture"``) for step-by-step figures.
Everything eye-related is computed inside one box around the eyes of the batch; the rest of the
frame is a cached per-person background (skin × vignette), so big frames stay cheap.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from . import eye_model as em
from .texture_cache import MipPyramid, PersonTextures, cached_on

__all__ = ["NIR_RANGES", "NIR_SIDE_RANGES", "NIR_HEADSET_RANGES", "in_headset", "ALL_STAGES", "sample_nir_look", "NIRTextureCache", "render_eye",
           "lid_shade", "lid_shade_maps", "lid_textures", "defocus_blur"]

ALL_STAGES = ("eyeball", "iris", "lids", "glints", "texture")
MAX_GLINTS = 12
EDGE_PX = 1.4     # soft edge width: the headset camera is not pixel-sharp

# Person-level appearance (intensities are 0..255 before the vignette).
NIR_RANGES: dict[str, tuple[float, float]] = {
    # Placement (renderer 2026.12-2, issue 29): real OpenEDS frames show the eye lower in the frame
    # (its visible centre at 0.61 of the height) and less open (0.29 of the height) than 2026.12-1's
    # (0.51, 0.38): the centre range moved down and widened, the eye made a little smaller.
    # 2026.12-3: the range's top raised from 0.27: the real frames' eye (16.6 % of the pixels, the
    # third party's count) lay above 2026.12-2's 95th percentile (16.4 %).
    "eye_size": (0.22, 0.285),      # eyeball radius / frame width
    "eye_cx": (0.46, 0.54),          # eyeball centre / width (canonical layout)
    "eye_cy": (0.49, 0.65),          # eyeball centre / height
    "skin_level": (180.0, 214.0),
    "skin_texture": (0.6, 1.4),
    "sclera_level": (137.0, 171.0),   # 2026.12-3: +5 (the larger eye's sclera reaches further into the lid shadow)
    "iris_level": (70.0, 100.0),
    "iris_contrast": (0.10, 0.24),
    "pupil_level": (16.0, 34.0),
    "lash_darkness": (0.7, 0.95),
    "lash_length_scale": (0.85, 1.2),
    "glint_count": (8, 12),          # integer
    "glint_ring": (0.24, 0.40),      # ring half-width on the cornea (eye units)
    "glint_aspect": (0.55, 0.85),    # ring height / width
    "glint_phase": (0.0, 6.2832),
    "glint_sigma": (0.007, 0.012),   # glint radius (eye units)
    "glint_gain": (1.2, 2.2),        # > 1 saturates the core
    "noise_sigma": (2.0, 4.5),       # sensor noise (× a per-image gain, state "noise_gain")
    "light_falloff": (0.6, 1.4),
    "defocus_px": (0.55, 1.25),      # Gaussian blur σ in pixels at 640 columns (× per-image "defocus")
    "vessel_strength": (0.05, 0.12),
    "pore_strength": (0.5, 1.3),
}
# Camera-side appearance: what distinguishes a person's left-eye camera from the right one.
NIR_SIDE_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "R": {"vignette_radius": (0.50, 0.56), "vignette_soft": (0.05, 0.10), "vignette_dx": (0.00, 0.05),
          "vignette_dy": (0.02, 0.08), "mount_strength": (0.55, 0.90), "glint_dx": (0.02, 0.08),
          "glint_dy": (-0.02, 0.04)},
    "L": {"vignette_radius": (0.52, 0.57), "vignette_soft": (0.07, 0.12), "vignette_dx": (-0.05, 0.00),
          "vignette_dy": (-0.08, -0.02), "mount_strength": (0.10, 0.35), "glint_dx": (-0.06, 0.00),
          "glint_dy": (-0.06, 0.00)},
}


# How a person's eye sits in the headset (renderer 2026.12-2; drawn after everything else, so a
# person keeps the rest of its look): the lids less open than in a photo of a relaxed eye (the
# state's openness × this), the pupil smaller relative to the iris (the state's pupil scale × this):
# real frames' pupils are smaller than 2026.12-1's (issue 29); and the camera's exposure in the
# person's session (real frames vary in exposure; one person's frames far less than people do).
NIR_HEADSET_RANGES: dict[str, tuple[float, float]] = {
    "lid_opening": (0.78, 0.98),
    "pupil_gain": (0.72, 0.95),
    "exposure": (0.8, 1.2),        # the session's camera gain (× a small per-frame flicker, state "exposure_flicker")
    # Renderer 2026.12-3: the iris as the headset's close, wide-angle camera sees it through the
    # cornea (which magnifies it) is larger against the eyeball than a photo's. Real frames' iris
    # share (7.65 % of pixels, a third party's count on 500 label maps) lay above 2026.12-2's
    # 95th percentile (7.3 %); ×1.1 on average brings it inside while the sclera share (7.9 %)
    # stays inside too (×1.2 pushed it out). The pupil keeps its size: its ratio to the iris shrinks.
    "iris_gain": (1.04, 1.16),
}


def sample_nir_look(rng: np.random.Generator, side: str, side_rng: np.random.Generator) -> dict[str, float]:
    """A person's NIR appearance: person-level draws from ``rng`` (shared by both eyes) and the
    camera-side draws from ``side_rng``."""
    look = {k: float(rng.integers(lo, hi + 1)) if k == "glint_count" else float(rng.uniform(lo, hi))
            for k, (lo, hi) in NIR_RANGES.items()}
    look.update({k: float(side_rng.uniform(lo, hi)) for k, (lo, hi) in NIR_SIDE_RANGES[side].items()})
    look["glint_jitter_seed"] = float(rng.integers(0, 2 ** 31))
    look.update({k: float(rng.uniform(lo, hi)) for k, (lo, hi) in NIR_HEADSET_RANGES.items()})
    return look


def in_headset(look: dict, geom: dict, state: dict) -> tuple[dict, dict]:
    """The person's geometry and the per-image state as the headset sees them: the iris radius
    times the person's ``iris_gain`` (the pupil's radius kept: its ratio to the iris divided by the
    gain), openness and pupil scale times ``lid_opening`` and ``pupil_gain``
    (:data:`NIR_HEADSET_RANGES`; a look without them leaves both unchanged)."""
    if "iris_gain" in look:
        geom = dict(geom, iris_radius=geom["iris_radius"] * look["iris_gain"],
                    pupil_ratio=geom["pupil_ratio"] / look["iris_gain"])
    if "lid_opening" in look:
        state = dict(state, openness=state["openness"] * look["lid_opening"],
                     pupil_scale=state["pupil_scale"] * look["pupil_gain"])
    return geom, state


# ----------------------------------------------------------------------------------------------
# Per-person textures and per-(person, side, size) backgrounds, cached.
# ----------------------------------------------------------------------------------------------

class NIRTextureCache(PersonTextures):
    """Per-person iris/lash textures and per-(person, side, size) skin × vignette frames, held in a
    byte-bounded LRU (:func:`~eyegen_lib.science.data.texture_cache.process_cache` unless ``cache`` is
    given). ``key`` is any hashable identity (e.g. (seed, person)); textures are drawn from
    ``rng_seed``. A 400 × 640 frame's four maps are 4 MB, an 80 × 128 one's 160 kB; a person's lid
    pyramids keep only the levels its render size samples (:class:`~eyegen_lib.science.data.texture_cache.MipPyramid`).
    """

    modality = "nir"

    @staticmethod
    def _person(rng_seed: int, geom_row: dict, look_row: dict, lid_level: int = 0) -> dict:
        rng = np.random.default_rng(rng_seed)
        iris = torch.from_numpy(em.iris_structure_texture(rng))[None]
        upper, lower = lid_textures(rng, geom_row, look_row)
        return {"iris": em.mip_levels(iris), **lid_pyramids(upper, lower, rng_seed, geom_row, look_row, lid_level)}

    def frame(self, key, side: str, rng_seed: int, look_row: dict, size: tuple[int, int],
              device=torch.device("cpu")) -> tuple:
        """(skin, vignette, skin × vignette, vessels), each (H, W), canonical layout. The skin
        depends on the person only (same ``rng_seed`` for both eyes), the vignette on the camera
        side; ``vessels`` is the conjunctival vessel darkening (0..1) around the eye."""
        def build():
            rng = np.random.default_rng(rng_seed)
            skin = skin_map(rng, look_row, size)
            vig = vignette_map(look_row, size)
            vessels = vessel_map(rng, look_row, size)
            return (skin, vig, skin * vig, vessels)
        return cached_on(self.cache, ("nir", "frame", key, side, tuple(size)), build, device)


def skin_map(rng: np.random.Generator, look: dict, size: tuple[int, int]) -> torch.Tensor:
    """Skin intensity (H, W): faint broad unevenness, fine pores, fine wrinkles (crow's feet
    radiating from the temporal corner, horizontal lines below the eye), lit by the LEDs around
    the eye (brighter near it) with a darker band towards the brow."""
    H, W = size
    k = look["skin_texture"]
    octaves = [(3, 0.03 * k), (8, 0.018 * k), (25, 0.012 * k), (80, 0.012 * k), (200, 0.012 * k), (400, 0.010 * k)]
    rel = torch.from_numpy(fractal_scaled(rng, size, octaves))
    s = H / 400.0                                    # pixels per native pixel
    y = (torch.arange(H, dtype=torch.float32)[:, None] + 0.5) / W
    x = (torch.arange(W, dtype=torch.float32)[None, :] + 0.5) / W
    ex, ey = look["eye_cx"], look["eye_cy"] * H / W
    r_eye = look["eye_size"]
    # Pores: sparse dark dots ~2-4 native pixels wide, denser on the cheek than on the lid.
    if s >= 0.3:
        white = torch.from_numpy(rng.random((H, W)).astype(np.float32))
        dots = (white > 0.985).float()[None, None]
        rad = max(1, int(round(1.2 * s)))
        dots = F.avg_pool2d(F.pad(dots, (rad, rad, rad, rad), mode="reflect"), 2 * rad + 1, 1)[0, 0]
        dots = dots * (2 * rad + 1) ** 2 / (1 + 2 * rad * rad)        # ~unit peak
        cheek = 0.6 + 0.4 * torch.sigmoid((y - ey - 0.5 * r_eye) / (0.1 * r_eye))
        rel = rel - 0.05 * look.get("pore_strength", 1.0) * k * dots.clamp(max=1.5) * cheek
        # Fine skin grain at pixel scale (a touch of anisotropy: skin lines run horizontally).
        grain = fractal_aniso(rng, size, rows=int(120 * s), cols=int(60 * s))
        rel = rel + 0.012 * k * grain
    # Wrinkles: thin dark lines (anisotropic noise ridges) in two fields.
    def ridges(noise, width):
        return torch.clamp(1.0 - noise.abs() / width, min=0.0) ** 2
    # Crow's feet: lines radiating from just outside the temporal corner (canonical: image left).
    tx, ty = ex - 1.15 * r_eye, ey + 0.05 * r_eye
    ang = torch.atan2(y - ty, -(x - tx))                          # 0 pointing temporally (left)
    dist = torch.sqrt((x - tx) ** 2 + (y - ty) ** 2) / r_eye
    n_ang = 1024
    prof = torch.from_numpy(em.polar_noise_texture(rng, 2, n_ang, 1.0, 9.0)[0].astype(np.float32))
    ia = ((ang + math.pi) / (2 * math.pi) * n_ang).long().clamp(0, n_ang - 1)
    lines = ridges(prof[ia], 0.35) * ((ang.abs() < 1.1).float())
    env = torch.exp(-((dist - 0.45) / 0.3) ** 2) * (x < tx + 0.1 * r_eye).float()
    crow = lines * env * look.get("pore_strength", 1.0)
    # Horizontal lines under the eye and across the lid (thin, wavy, partial).
    wav = fractal_aniso(rng, size, rows=int(max(4, 26 * s)), cols=4)
    under = ridges(wav, 0.12) * torch.exp(-((y - ey - 0.95 * r_eye) / (0.35 * r_eye)) ** 2) \
        * torch.exp(-((x - ex) / (1.4 * r_eye)) ** 2)
    rel = rel - 0.05 * k * crow - 0.035 * k * under
    d2 = (x - ex) ** 2 + 1.6 * (y - ey) ** 2
    light = 1.0 - 0.9 * look["light_falloff"] * d2
    # The brow above is further from the LEDs: a soft darker band across the top.
    brow = 1.0 - 0.18 * torch.sigmoid((ey - 0.29 * 1.0 - y) * 40.0)
    return (look["skin_level"] * (1.0 + rel) * light.clamp_min(0.3) * brow).contiguous()


def fractal_aniso(rng, size, rows: int, cols: int) -> torch.Tensor:
    """Unit-ish smooth noise with ``rows`` × ``cols`` cells over the frame (anisotropic cells)."""
    H, W = size
    rows, cols = max(2, min(rows, H)), max(2, min(cols, W))
    grid = torch.from_numpy(rng.standard_normal((1, 1, rows + 3, cols + 3)).astype(np.float32))
    up = F.interpolate(grid, size=(H + 3 * H // rows + 3, W + 3 * W // cols + 3), mode="bicubic", align_corners=False)
    oy, ox = (up.shape[2] - H) // 2, (up.shape[3] - W) // 2
    return up[0, 0, oy:oy + H, ox:ox + W].contiguous()


def vessel_map(rng: np.random.Generator, look: dict, size: tuple[int, int]) -> torch.Tensor:
    """Conjunctival vessels (0..1 darkening, already scaled by ``vessel_strength``) in frame
    pixels around the eye: thin wandering vessels entering from both corners and thinning
    towards the cornea, plus faint mottling. Low contrast: blood absorbs little at 850 nm."""
    from PIL import Image, ImageDraw

    H, W = size
    ss = 2
    canvas = Image.new("L", (W * ss, H * ss), 0)
    draw = ImageDraw.Draw(canvas)
    ppu = look["eye_size"] * W * ss
    cx, cy = look["eye_cx"] * W * ss, look["eye_cy"] * H * ss
    for _ in range(int(rng.integers(10, 22))):
        side = rng.choice([-1, 1])
        u, v = side * rng.uniform(0.85, 1.25), rng.normal(0.02, 0.25)
        ang = math.atan2(-v * 0.4, -side) + rng.normal(0, 0.5)
        width = rng.uniform(0.007, 0.016) * ppu
        bright = rng.uniform(0.4, 1.0)
        for _ in range(int(rng.integers(8, 22))):
            step = rng.uniform(0.025, 0.06)
            ang += rng.normal(0, 0.5)
            u2, v2 = u + step * math.cos(ang), v + step * math.sin(ang)
            draw.line([(cx + u * ppu, cy + v * ppu), (cx + u2 * ppu, cy + v2 * ppu)], fill=int(255 * bright),
                      width=max(1, int(round(width))))
            u, v, width = u2, v2, width * 0.92
            if abs(u) < 0.5:
                break
    small = np.asarray(canvas.resize((W, H), Image.BOX), np.float32) / 255.0
    mottle = fractal_scaled(rng, size, [(25, 0.5), (60, 0.5)])
    vessels = torch.from_numpy(small) + 0.25 * torch.from_numpy(mottle).clamp(min=0)
    return (look.get("vessel_strength", 0.06) * vessels).contiguous()


def lid_shade_maps(rng: np.random.Generator, geom_row: dict, rgb: bool = False,
                   n_t: int = em.LASH_N_T, n_d: int = em.LASH_N_D):
    """The skin shading of :func:`lid_shade` baked per person into lid coordinates
    (columns t ∈ ``LASH_T_RANGE``, rows d ∈ ``LASH_D_RANGE`` away from the margin), with detail
    that is too costly to evaluate per pixel and image: a wobbly crease, fine lid wrinkles, fold
    lines under the lower lid. Returns additive shading ``(upper (n_d, n_t), lower (n_d, n_t))``
    (the skin is multiplied by 1 + shade). ``rgb`` adds a photo's dark lash line and waterline."""
    (t_lo, t_hi), (d_lo, d_hi) = em.LASH_T_RANGE, em.LASH_D_RANGE
    t = t_lo + (torch.arange(n_t, dtype=torch.float32)[None, :] + 0.5) * ((t_hi - t_lo) / n_t)
    d = d_lo + (torch.arange(n_d, dtype=torch.float32)[:, None] + 0.5) * ((d_hi - d_lo) / n_d)
    tc = t.clamp(0, 1)
    span = torch.sin(math.pi * tc)
    lid_span = ((t + 0.03) / 0.06).clamp(0, 1) * ((1.03 - t) / 0.06).clamp(0, 1)
    wobble = lambda amp, smooth: amp * torch.from_numpy(
        em.polar_noise_texture(rng, 2, n_t, 1.0, smooth)[0].astype(np.float32))[None, :]
    b = em.bump
    # Upper lid: lit convex tarsal plate, crease groove (wobbling), hollow above, rim at the margin.
    crease_at = geom_row["crease_height"] * (0.35 + 0.65 * span) + wobble(0.02, 60.0) * span
    fold = b((d / crease_at - 0.5) * 2.2)
    crease = b((d - crease_at) * 25.0)
    crease2 = b((d - crease_at - 0.07 - wobble(0.02, 40.0)) * 35.0) * (wobble(1.0, 80.0) > 0).float()
    hollow = b((d - crease_at - 0.12) * 10.0)
    strength = geom_row["crease_strength"] * span
    up = 0.06 * span * fold - strength * (0.3 * crease + 0.1 * crease2 + 0.08 * hollow)
    up = up - 0.45 * lid_span * b(d * 33.0)
    # Fine lid wrinkles parallel to the margin between margin and crease.
    for _ in range(int(rng.integers(2, 5))):
        dk = rng.uniform(0.25, 0.85) * crease_at + wobble(0.015, 30.0)
        env = b((tc - rng.uniform(0.2, 0.8)) / rng.uniform(0.15, 0.35))
        up = up - rng.uniform(0.01, 0.03) * env * span * b((d - dk) * 70.0)
    if rgb:   # the upper margin reads as a thick dark line in a photo (dense lash roots + shadow)
        lash_line = 1.0 - 0.55 * (((t + 0.02) / 0.08).clamp(0, 1) * ((1.02 - t) / 0.08).clamp(0, 1)) \
            * b((d - 0.02) * 22.0)
        up = (1.0 + up) * lash_line - 1.0
    # Lower lid: thin bright wet rim, soft fold, a few fold lines and a darker tear trough.
    lo = 0.10 * lid_span * (b((d - 0.015) * 66.0) - 0.5 * b((d - 0.2 * span - 0.06) * 20.0))
    for _ in range(int(rng.integers(1, 4))):
        dk = (rng.uniform(0.08, 0.18) + 0.06 * span) + wobble(0.015, 50.0)
        t_c, t_w = rng.uniform(0.3, 0.7), rng.uniform(0.2, 0.4)
        env = b((tc - t_c) / t_w) * lid_span
        a = rng.uniform(0.03, 0.07)
        lo = lo - a * env * b((d - dk) * 45.0) + 0.4 * a * env * b((d - dk + 0.035) * 25.0)
    lo = lo - 0.04 * span * b((d - 0.2) * 9.0)
    if rgb:   # waterline: a lighter, wet band right on the margin, then the lower lash line
        lo = lo + 0.06 * lid_span * b((d - 0.01) * 50.0) - 0.12 * lid_span * b((d - 0.045) * 30.0)
    # Fade to 0 at the rows' far end (the renderer clamps coordinates to the border).
    # Stay inside the renderers' lid box (0.35 eye units under the lower lid, crease height + 0.3
    # over the upper one): nothing may change outside it.
    fade_up = ((geom_row["crease_height"] + 0.27 - d) / 0.04).clamp(0, 1)
    fade_lo = ((0.31 - d) / 0.04).clamp(0, 1)
    return (up * fade_up).clamp(min=-0.9), (lo * fade_lo).clamp(min=-0.9)


def lid_textures(rng: np.random.Generator, geom_row: dict, look_row: dict, rgb: bool = False):
    """A person's lid textures in lid coordinates (see :func:`eye_model.lash_texture`):
    ``upper`` (3, n_d, n_t) = (lash coverage, additive skin shading, shadow on the eyeball) and
    ``lower`` (2, n_d, n_t) = (lash coverage, additive skin shading)."""
    from scipy.ndimage import gaussian_filter

    length = geom_row["lash_length"] * look_row["lash_length_scale"]
    lash_up = em.lash_texture(rng, geom_row["lash_density"], length)
    lash_lo = em.lash_texture(rng, geom_row["lash_density"], length, lower=True)
    shade_up, shade_lo = lid_shade_maps(rng, geom_row, rgb=rgb)
    # Shadow of the lashes on the eyeball just under the margin: the lashes' density along the lid
    # (soft), plus a blurred copy of any lash that droops over the eye.
    (d_lo, d_hi) = em.LASH_D_RANGE
    n_d = lash_up.shape[0]
    d = d_lo + (np.arange(n_d, dtype=np.float32)[:, None] + 0.5) * ((d_hi - d_lo) / n_d)
    root = int(round(-d_lo / (d_hi - d_lo) * n_d))
    dens = gaussian_filter(lash_up[root:root + int(0.2 / (d_hi - d_lo) * n_d)].mean(0), 12.0, mode="nearest")
    dens = dens / (dens.max() + 1e-6)
    fall = np.clip(1.0 + d / 0.09, 0.0, 1.0) ** 2 * (d < 0.02)
    shadow = 0.22 * dens[None, :] * fall + 0.5 * gaussian_filter(lash_up, 5.0) * (d < 0.0)
    upper = torch.from_numpy(np.stack([lash_up, shade_up.numpy(), shadow.astype(np.float32)]).astype(np.float32))
    lower = torch.from_numpy(np.stack([lash_lo, shade_lo.numpy()]).astype(np.float32))
    # Renderers sample with border padding, over lid boxes that depend on the batch: keep a band
    # of exact zeros at every edge, wider than the coarsest mip level's texels, so that pixels
    # beyond the texture read 0 whatever the batch.
    for tex in (upper, lower):
        tex[:, :LID_TEX_BORDER] = 0.0
        tex[:, -LID_TEX_BORDER:] = 0.0
        tex[:, :, :LID_TEX_BORDER] = 0.0
        tex[:, :, -LID_TEX_BORDER:] = 0.0
    return upper, lower


LID_TEX_BORDER = 24    # texels; lid textures keep at most 5 mip levels (16-texel cells)


def fractal_scaled(rng, size, octaves):
    """:func:`eye_model.fractal_noise` with octave cell counts given for a 400-row frame."""
    H, _ = size
    return em.fractal_noise(rng, size, [(c * H / 400.0 if c > 20 else c, a) for c, a in octaves])


def vignette_map(look: dict, size: tuple[int, int]) -> torch.Tensor:
    """Lens vignette × head-mount shadow (H, W) in 0..1, canonical layout (nasal side = right)."""
    H, W = size
    y = (torch.arange(H, dtype=torch.float32)[:, None] + 0.5) / W
    x = (torch.arange(W, dtype=torch.float32)[None, :] + 0.5) / W
    cx, cy = 0.5 + look["vignette_dx"], 0.5 * H / W + look["vignette_dy"]
    r = torch.sqrt((x - cx) ** 2 + (y - cy) ** 2)
    edge = torch.sigmoid((look["vignette_radius"] - r) / (0.25 * look["vignette_soft"]))
    falloff = 1.0 - 0.35 * (r / look["vignette_radius"]).clamp(max=1.2) ** 2
    # Head-mount / nose shadow in the lower nasal corner.
    mount = torch.sigmoid(((x - 0.86) * 1.0 + (y - 0.55 * H / W) * 0.8) * 18.0)
    return (edge * falloff.clamp_min(0.0)) * (1.0 - look["mount_strength"] * mount)


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------

def frame_placement(look: dict, state: dict, size: tuple[int, int]):
    """Eyeball centre (cx, cy) in canonical pixel coordinates and pixels per eye unit, (B,) each."""
    H, W = size
    ppu = look["eye_size"] * W * state["scale"]
    cx = look["eye_cx"] * W - 0.5 + state["shift_x"] * ppu
    cy = look["eye_cy"] * H - 0.5 + state["shift_y"] * ppu
    return cx, cy, ppu


def to_pixels(points: torch.Tensor, cx, cy, ppu):
    """Eye-unit (u, v) points (B, N, 2) → canonical pixel (x, y)."""
    return torch.stack([cx[:, None] + ppu[:, None] * points[..., 0], cy[:, None] + ppu[:, None] * points[..., 1]], -1)


@functools.lru_cache(maxsize=4096)
def _glint_jitter(seed: int) -> np.ndarray:
    """A person's per-LED glint offsets (drawn once per person, not per image)."""
    jitter = np.random.default_rng(seed).normal(0, 0.08, MAX_GLINTS).astype(np.float32)
    jitter.flags.writeable = False
    return jitter


def _glints(look, state, g, cx, cy, ppu, origin, n_rows, n_cols):
    """LED glints as saturating Gaussian sprites splatted into a (B, h, w) layer.

    Glint k sits on the reflection ring around the cornea's centre of curvature, whose projection
    is 0.45 eye units along the optical axis from the eyeball centre: the ring follows the cornea
    (about half as far as the pupil moves) while its shape is fixed by the headset's LEDs.
    """
    B = cx.shape[0]
    y0, x0 = origin
    k = torch.arange(MAX_GLINTS, dtype=torch.float32)
    count = look["glint_count"][:, None]
    # Per-LED irregularity (mounting tolerances): fixed per person, from its seed.
    jit = torch.from_numpy(np.stack([_glint_jitter(int(s)) for s in look["glint_jitter_seed"].tolist()])).to(k.device)
    ang = look["glint_phase"][:, None] + 2 * math.pi * k[None] / count + jit
    ring_x = look["glint_ring"][:, None] * torch.cos(ang)
    ring_y = look["glint_ring"][:, None] * look["glint_aspect"][:, None] * torch.sin(ang)
    centre_u = 0.45 * g[:, 0] + look["glint_dx"] + state["glint_dx"]
    centre_v = 0.45 * g[:, 1] + look["glint_dy"] + state["glint_dy"]
    gx = cx[:, None] + ppu[:, None] * (centre_u[:, None] + ring_x) - x0
    gy = cy[:, None] + ppu[:, None] * (centre_v[:, None] + ring_y) - y0
    active = (k[None] < count).float()
    true_sigma = look["glint_sigma"] * ppu
    sigma = true_sigma.clamp_min(0.45)                                        # (B,)
    # Below ~half a pixel a glint is drawn wider than it is; dimming it by the area ratio keeps
    # its light (a camera at that resolution would average it into the pixel, not saturate it).
    area = (true_sigma / sigma) ** 2
    # each glint drawn within its own ±3σ (the window is the batch's widest; the rest is zeroed),
    # so an image does not depend on the other images of its batch
    own = (3 * sigma).ceil().clamp(1, 10)                                     # (B,)
    half = int(own.max().item())
    off = torch.arange(-half, half + 1, dtype=torch.float32)
    px = gx.round()[..., None, None] + off[None, None, None, :]              # (B,K,1,S)
    py = gy.round()[..., None, None] + off[None, None, :, None]              # (B,K,S,1)
    d2 = (px - gx[..., None, None]) ** 2 + (py - gy[..., None, None]) ** 2
    gain = look["glint_gain"] * area
    val = (gain[:, None, None, None] * torch.exp(-0.5 * d2 / sigma[:, None, None, None] ** 2)).clamp(max=1.0)
    val = val * active[..., None, None]
    window = own[:, None, None, None]
    val = val * ((off[None, None, None, :].abs() <= window) & (off[None, None, :, None].abs() <= window))
    inside = (px >= 0) & (px < n_cols) & (py >= 0) & (py < n_rows)
    val = torch.where(inside, val, torch.zeros_like(val))
    b = torch.arange(B)[:, None, None, None]
    flat = (b * n_rows + py.clamp(0, n_rows - 1).long()) * n_cols + px.clamp(0, n_cols - 1).long()
    layer = torch.zeros(B * n_rows * n_cols)
    layer.index_put_((flat.reshape(-1),), val.reshape(-1), accumulate=True)
    return layer.view(B, n_rows, n_cols).clamp_(max=1.0)


def lid_shade(f: dict, geom: dict) -> torch.Tensor:
    """Multiplicative shading of the skin around the lids (B, h, w), from the lid distances of
    :func:`eye_model.eye_fields`: the tarsal skin between margin and crease is convex and lit,
    the crease a dark groove, the orbital skin above it in a soft hollow (all fading out before
    the lid box's top); a dark rim over the upper margin (lash roots, lid thickness), a thin
    bright wet rim under the lower margin and a soft fold under the lower lid."""
    above, below, t = f["above_upper"], f["below_lower"], f["t"]
    col = lambda k: geom[k][:, None, None]
    span = torch.sin(math.pi * t.clamp(0, 1))                                  # (B,1,w) 0 at corners
    lid_span = ((t + 0.03) / 0.06).clamp(0, 1) * ((1.03 - t) / 0.06).clamp(0, 1)
    crease_at = col("crease_height") * (0.35 + 0.65 * span)                    # (B,1,w)
    inv = 1.0 / crease_at
    fold = em.bump((above * inv - 0.5) * 2.2)                                  # lit tarsal plate
    crease = em.bump((above - crease_at) * 25.0)
    hollow = em.bump((above - crease_at - 0.12) * 10.0)
    strength = col("crease_strength") * span
    shade = 1.0 + 0.06 * span * fold - strength * (0.3 * crease + 0.08 * hollow)
    shade = shade - (0.45 * lid_span) * em.bump(above * 33.0)
    shade = shade + (0.10 * lid_span) * (em.bump((below - 0.015) * 66.0)
                                         - 0.5 * em.bump((below - 0.2 * span - 0.06) * 20.0))
    return shade


LID_MIP_LEVELS = 5


def lid_pyramids(upper, lower, rng_seed: int, geom_row: dict, look_row: dict, lid_level: int = 0,
                 **lid_options) -> dict:
    """A person's lid textures (the person's second draw, after the iris) as :class:`MipPyramid` s
    keeping ``lid_level`` and coarser; a dropped level is rebuilt by replaying the same draws."""
    def replay(which):
        def make():
            rng = np.random.default_rng(rng_seed)
            em.iris_structure_texture(rng)
            return lid_textures(rng, geom_row, look_row, **lid_options)[which]
        return make

    return {"upper": MipPyramid(em.mip_levels(upper, LID_MIP_LEVELS), replay(0), lid_level),
            "lower": MipPyramid(em.mip_levels(lower, LID_MIP_LEVELS), replay(1), lid_level)}


def lid_texels_per_px(ppu: torch.Tensor) -> torch.Tensor:
    """Lid-texture texels per output pixel, per image, at ``ppu`` pixels per eye unit."""
    (t_lo, t_hi) = em.LASH_T_RANGE
    return 1.0 / ((t_hi - t_lo) * em.LASH_UNITS_PER_T / em.LASH_N_T * ppu)


def lid_levels_by_person(persons: list[int], ppu: torch.Tensor) -> dict[int, int]:
    """The finest lid mip level each person's images in a batch sample (see :class:`MipPyramid`'s ``keep_from``)."""
    levels = em.mip_level_of(lid_texels_per_px(ppu), LID_MIP_LEVELS)
    finest: dict[int, int] = {}
    for p, level in zip(persons, levels.tolist()):
        finest[p] = min(finest.get(p, level), level)
    return finest


def _sample_lids(f, textures, ppu, up_rows, lo_rows, channels_last=False):
    """Sample the per-person lid textures (:func:`lid_textures`) at every pixel of the lid box:
    the upper one over ``up_rows`` at the distance above the upper margin, the lower one over
    ``lo_rows`` at the distance below the lower margin. Returns (B, 3, r, w) and (B, 2, r, w)."""
    (t_lo, t_hi), (d_lo, d_hi) = em.LASH_T_RANGE, em.LASH_D_RANGE
    gx = (f["t"] - t_lo) * (2 / (t_hi - t_lo)) - 1
    tpp = lid_texels_per_px(ppu)  # per image
    out = []
    for key, dist_key, rows in (("upper", "above_upper", up_rows), ("lower", "below_lower", lo_rows)):
        dist = f[dist_key][:, rows]
        grid = torch.stack([gx.expand_as(dist), (dist - d_lo) * (2 / (d_hi - d_lo)) - 1], -1)
        out.append(em.sample_texture([tx[key] for tx in textures], grid, tpp, padding_mode="border"))
    return out


def defocus_blur(img: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-image Gaussian blur of (B, H, W) or (B, C, H, W) images, σ (B,) in pixels (~0.3-1.6):
    a separable 5-tap kernel (edges replicated), as shifted multiply-adds — far cheaper on a CPU
    than a grouped convolution with per-image kernels. Straight edges keep their 0.5 level, so
    mask boundaries stay where they are."""
    if float(sigma.max()) < 0.3:      # per image the same as below: σ < 0.3 is left sharp
        return img
    shape = (-1,) + (1,) * (img.dim() - 1)
    inv = 1.0 / (2.0 * sigma.clamp_min(0.2) ** 2)
    sharp = sigma < 0.3
    w1 = torch.exp(-inv).masked_fill(sharp, 0.0)
    w2 = torch.exp(-4.0 * inv).masked_fill(sharp, 0.0)
    norm = 1.0 / (1.0 + 2.0 * w1 + 2.0 * w2)
    w1, w2, w0 = (w1 * norm).view(shape), (w2 * norm).view(shape), norm.view(shape)
    for dim in (-2, -1):
        n = img.shape[dim]
        sl = lambda a, b_: img.narrow(dim, a, b_)
        out = img * w0
        out.narrow(dim, 1, n - 1).addcmul_(sl(0, n - 1), w1)
        out.narrow(dim, 0, n - 1).addcmul_(sl(1, n - 1), w1)
        out.narrow(dim, 2, n - 2).addcmul_(sl(0, n - 2), w2)
        out.narrow(dim, 0, n - 2).addcmul_(sl(2, n - 2), w2)
        # Replicated edges: the missing neighbours' weight goes to the edge pixels.
        out.narrow(dim, 0, 1).addcmul_(sl(0, 1), w1 + w2)
        out.narrow(dim, 1, 1).addcmul_(sl(0, 1), w2)
        out.narrow(dim, n - 1, 1).addcmul_(sl(n - 1, 1), w1 + w2)
        out.narrow(dim, n - 2, 1).addcmul_(sl(n - 1, 1), w2)
        img = out
    return img


def render_eye(geom: dict, look: dict, state: dict, size: tuple[int, int], textures: list[dict],
               frames: list[tuple], noise: torch.Tensor | None = None, stages=ALL_STAGES,
               return_layers: bool = False, quantize: bool = False) -> dict:
    """Render a batch of NIR eye frames from explicit parameters.

    ``geom``/``look``/``state``: dicts of (B,) tensors (see :mod:`eye_model`, :data:`NIR_RANGES`).
    ``textures``: per image, the person's textures (:meth:`NIRTextureCache.person`);
    ``frames``: per image, (skin, vignette, skin × vignette) maps from :meth:`NIRTextureCache.frame`;
    ``noise``: optional (B, H, W) unit-variance sensor noise, or a list of B (H, W) tensors. ``stages``: a subset of
    :data:`ALL_STAGES` — the eyeball alone, + iris and pupil, + lids, + glints, + texture (skin,
    iris relief, lashes, crease, vignette, noise); the mask follows the stages drawn.

    Returns ``image`` (B, H, W) — float 0..255, or uint8 if ``quantize`` — ``mask`` uint8
    (B, H, W), ``landmarks`` (B, 7, 2) and ``eyelid`` (B, 64, 2) pixel (x, y), all mirrored for
    left eyes, and with ``return_layers`` a list (one per chunk) of the box-sized intermediate
    fields of :func:`eye_model.eye_fields` plus the box ``(y0, y1, x0, x1)``.
    """
    H, W = size
    B = state["pitch"].shape[0]
    geom, state = in_headset(look, geom, state)
    cx, cy, ppu = frame_placement(look, state, size)
    lm_u, lid_u = em.eye_landmarks(geom, state)
    landmarks, eyelid = to_pixels(lm_u, cx, cy, ppu), to_pixels(lid_u, cx, cy, ppu)
    image = torch.empty(B, H, W, dtype=torch.uint8 if quantize else torch.float32)
    mask = torch.empty(B, H, W, dtype=torch.uint8)
    # Work in chunks of about a megabyte per intermediate tensor: big tensors cost far more per
    # element on a CPU (fresh pages on every allocation) than cache-sized ones.
    chunk = max(1, (1 << 18) // (H * W // 2))
    def render_slice(sl):
        pick = lambda d: {k: v[sl] for k, v in d.items()}
        return _render_chunk(pick(geom), pick(look), pick(state), size, textures[sl], frames[sl],
                             em.noise_of_chunk(noise, sl), set(stages), cx[sl], cy[sl], ppu[sl], eyelid[sl])

    return em.render_in_chunks(render_slice, image, mask, chunk, quantize=quantize, landmarks=landmarks,
                               eyelid=eyelid, mirror=state["mirror"], return_layers=return_layers)


def _render_chunk(geom, look, state, size, textures, frames, noise, stages, cx, cy, ppu, eyelid):
    H, W = size
    with_iris, with_lids = "iris" in stages, "lids" in stages
    with_glints, with_texture = "glints" in stages, "texture" in stages
    B = cx.shape[0]
    col = lambda d, k: d[k][:, None, None]
    top_margin = (geom["lash_length"] * look["lash_length_scale"] * 1.3 + 0.1).clamp_min(geom["crease_height"] + 0.3)
    lid_box, eye_box = em.eye_boxes(geom, top_margin, cx, cy, ppu, eyelid, size, with_lids)
    y0, y1, x0, x1 = lid_box
    h, w = y1 - y0, x1 - x0
    eb = (eye_box[0] - y0, eye_box[1] - y0, eye_box[2] - x0, eye_box[3] - x0)   # inside the lid box
    ey = slice(eb[0], eb[1])
    ex = slice(eb[2], eb[3])

    # Pixel-centre coordinates in eye units: u per column, v per row.
    xs = torch.arange(x0, x1, dtype=torch.float32)[None, None, :]
    ys = torch.arange(y0, y1, dtype=torch.float32)[None, :, None]
    u = (xs - cx[:, None, None]) / ppu[:, None, None]
    v = (ys - cy[:, None, None]) / ppu[:, None, None]
    f = em.eye_fields(u, v, geom, state, ppu, lids=with_lids, edge_px=EDGE_PX, eye_box=eb)

    # --- skin and lids (lid box) ------------------------------------------------------------
    if with_texture:
        skin = torch.stack([fr[0][y0:y1, x0:x1] for fr in frames])
    else:
        skin = col(look, "skin_level").expand(B, h, w).clone()
    up_rows, lo_rows = slice(0, eb[1]), slice(eb[0], h)
    lid_up = lid_lo = None
    if with_lids and with_texture and "upper" in textures[0]:
        # Baked per-person lid textures: lashes, crease/fold shading, lash shadow (one lookup each).
        lid_up, lid_lo = _sample_lids(f, textures, ppu, up_rows, lo_rows)
        skin[:, up_rows] *= 1.0 + lid_up[:, 1]
        skin[:, lo_rows] *= 1.0 + lid_lo[:, 1]
    elif with_lids:
        skin = skin * lid_shade(f, geom)

    # --- eyeball (eye box) -------------------------------------------------------------------
    skin_e = skin[:, ey, ex]
    above_e = f["above_upper"][:, ey, ex]
    t_e = f["t"][:, :, ex]
    # Sclera: lit from the front, darkening as the surface turns away and towards the corners.
    corner = 0.72 + 0.28 * torch.sin(math.pi * t_e.clamp(0, 1)).clamp_min(0.0).sqrt()
    sclera = col(look, "sclera_level") * (0.42 + 0.58 * f["sphere_z"].sqrt()) * corner
    if with_texture:  # faint uneven conjunctiva (the skin's relief, weakened) and vessels
        sclera = sclera * (0.6 + 0.4 / col(look, "skin_level") * skin_e)
        if len(frames[0]) > 3:
            sclera = sclera * (1.0 - torch.stack([fr[3][eye_box[0]:eye_box[1], eye_box[2]:eye_box[3]] for fr in frames]))
    lid_shadow = None
    if with_lids:   # the upper lid (thick, lash-laden) shades the top of the eyeball; wider mid-lid
        reach = 0.10 + 0.10 * torch.sin(math.pi * t_e.clamp(0, 1))
        lid_shadow = em.tail(above_e / reach) * 0.55
        if lid_up is not None:
            lid_shadow = lid_shadow + lid_up[:, 2, eb[0]:, ex]
        # Plica semilunaris: a faint darker fold on the sclera hugging the caruncle.
        plica = em.bump((f["caruncle_q"] - 1.7) * 1.8) * (f["caruncle_q"] > 1.0).float()
        lid_shadow = lid_shadow + 0.12 * plica
        sclera = sclera * (1.0 - lid_shadow)
    eye = sclera
    # The iris and pupil are drawn inside the box where the iris shows (cheaper than the eye box).
    window = em.alpha_window(f["iris"]) if with_iris else None
    if window is not None:
        iy, ix = window
        box = lambda name: f[name][:, iy, ix]
        rho, p_ratio = box("rho"), em.pupil_ratio(geom, state)[:, None, None]
        # Darker limbal ring at the iris edge.
        iris = col(look, "iris_level") * (1.0 - 0.4 * ((rho - 0.75) * 4.0).clamp(0, 1) ** 2)
        if with_texture:
            # Stroma coordinates: the relief stretches between the pupil edge and the limbus.
            s = ((rho - p_ratio) / (1.0 - p_ratio)).clamp(0.0, 1.0)
            scale = (0.25 + 0.75 * s) / rho.clamp_min(1e-4)
            grid = torch.stack([box("ia") * scale, box("ib") * scale], -1)
            tpp = 192 / (2 * geom["iris_radius"] * ppu)  # per image
            relief = em.sample_texture([tx["iris"] for tx in textures], grid, tpp)[:, 0]
            iris = iris * (1.0 + col(look, "iris_contrast") * relief)
        if with_lids:
            iris = iris * (1.0 - 0.6 * lid_shadow[:, iy, ix])
        part = torch.lerp(eye[:, iy, ix], iris, box("iris"))
        eye[:, iy, ix] = torch.lerp(part, col(look, "pupil_level").expand_as(part), box("pupil"))
    if with_lids:    # caruncle: fleshy, lumpy tissue in the nasal corner, darker than skin
        car = f["caruncle"]
        if with_texture:
            lumps = 0.62 + 2.5 * (skin_e / col(look, "skin_level") - 0.9)   # skin pores/grain, exaggerated
            dome = (1.0 - f["caruncle_q"]).clamp(0.0, 1.0)                   # convex: lit centre, dark rim
            car_col = skin_e * lumps.clamp(0.25, 1.0) * (0.62 + 0.4 * dome)
        else:
            car_col = 0.6 * skin_e
        eye = torch.lerp(eye, car_col, car)
    image = skin
    image[:, ey, ex] = torch.lerp(skin_e, eye, f["fissure"])

    # --- glints ------------------------------------------------------------------------------
    if with_glints:
        pitch, yaw = em.canonical_gaze(state)
        g, _, _ = em.gaze_axes(pitch, yaw)
        eh, ew = eb[1] - eb[0], eb[3] - eb[2]
        glints = _glints(look, state, g, cx, cy, ppu, (eye_box[0], eye_box[2]), eh, ew)
        image[:, ey, ex] += glints * f["fissure"] * 300.0

    # --- lashes, vignette, defocus, noise ----------------------------------------------------
    if with_texture:
        if lid_up is not None:
            image[:, up_rows] *= 1.0 - col(look, "lash_darkness") * lid_up[:, 0]
            image[:, lo_rows] *= 1.0 - 0.8 * col(look, "lash_darkness") * lid_lo[:, 0]
        image *= torch.stack([fr[1][y0:y1, x0:x1] for fr in frames])
        full = torch.stack([fr[2] for fr in frames])
    else:
        full = col(look, "skin_level").expand(B, H, W).clone()
    full[:, y0:y1, x0:x1] = image
    mask = torch.zeros(B, H, W, dtype=torch.uint8)
    mask[:, eye_box[0]:eye_box[1], eye_box[2]:eye_box[3]] = f["mask"] if with_iris else f["mask"].clamp(max=1)
    if with_texture:
        base = look["defocus_px"] if "defocus_px" in look else torch.full((B,), 0.9)
        gain = state["defocus"] if "defocus" in state else torch.ones(B)
        full = defocus_blur(full, (base * gain).clamp(0.45, 1.6) * (W / 640.0))
        if "exposure" in look:    # the camera's exposure: the session's, flickering per frame; before the noise
            flicker = state["exposure_flicker"] if "exposure_flicker" in state else torch.ones(B)
            full *= (look["exposure"] * flicker)[:, None, None]
        if noise is not None:
            n_gain = state["noise_gain"] if "noise_gain" in state else torch.ones(B)
            full += noise * (look["noise_sigma"] * n_gain)[:, None, None]

    f.update(lid_box=lid_box, eye_box_frame=eye_box)
    return full, mask, f
