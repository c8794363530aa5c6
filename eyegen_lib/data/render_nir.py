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

import math
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

from . import eye_model as em

__all__ = ["NIR_RANGES", "NIR_SIDE_RANGES", "ALL_STAGES", "sample_nir_look", "NIRTextureCache", "render_eye",
           "lid_shade"]

ALL_STAGES = ("eyeball", "iris", "lids", "glints", "texture")
MAX_GLINTS = 12
EDGE_PX = 1.4     # soft edge width: the headset camera is not pixel-sharp

# Person-level appearance (intensities are 0..255 before the vignette).
NIR_RANGES: dict[str, tuple[float, float]] = {
    "eye_size": (0.24, 0.28),      # eyeball radius / frame width
    "eye_cx": (0.46, 0.54),          # eyeball centre / width (canonical layout)
    "eye_cy": (0.44, 0.56),          # eyeball centre / height
    "skin_level": (180.0, 214.0),
    "skin_texture": (0.6, 1.4),
    "sclera_level": (132.0, 166.0),
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
    "noise_sigma": (2.0, 4.5),
    "light_falloff": (0.6, 1.4),
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


def sample_nir_look(rng: np.random.Generator, side: str, side_rng: np.random.Generator) -> dict[str, float]:
    """A person's NIR appearance: person-level draws from ``rng`` (shared by both eyes) and the
    camera-side draws from ``side_rng``."""
    look = {k: float(rng.integers(lo, hi + 1)) if k == "glint_count" else float(rng.uniform(lo, hi))
            for k, (lo, hi) in NIR_RANGES.items()}
    look.update({k: float(side_rng.uniform(lo, hi)) for k, (lo, hi) in NIR_SIDE_RANGES[side].items()})
    look["glint_jitter_seed"] = float(rng.integers(0, 2 ** 31))
    return look


# ----------------------------------------------------------------------------------------------
# Per-person textures and per-(person, side, size) backgrounds, cached.
# ----------------------------------------------------------------------------------------------

class NIRTextureCache:
    """Per-person iris/lash textures and per-(person, side, size) skin × vignette frames.

    ``key`` is any hashable identity (e.g. (seed, person)); textures are drawn from ``rng_seed``.
    Frames are kept in a small LRU (a 400 × 640 frame is 1 MB).
    """

    def __init__(self, max_frames: int = 48):
        self.textures: dict = {}
        self.frames: OrderedDict = OrderedDict()
        self.max_frames = max_frames

    def person(self, key, rng_seed: int, geom_row: dict, look_row: dict) -> dict:
        if key not in self.textures:
            rng = np.random.default_rng(rng_seed)
            iris = torch.from_numpy(em.iris_structure_texture(rng))[None]
            length = geom_row["lash_length"] * look_row["lash_length_scale"]
            upper = em.lash_texture(rng, geom_row["lash_density"], length)
            lower = em.lash_texture(rng, geom_row["lash_density"], length, lower=True)
            lashes = torch.from_numpy(np.stack([upper, lower]))
            self.textures[key] = {"iris": em.mip_levels(iris), "lashes": em.mip_levels(lashes, 4)}
        return self.textures[key]

    def frame(self, key, side: str, rng_seed: int, look_row: dict, size: tuple[int, int]) -> tuple:
        """(skin, vignette, skin × vignette), each (H, W), canonical layout. The skin depends on
        the person only (same ``rng_seed`` for both eyes), the vignette on the camera side."""
        fkey = (key, side, tuple(size))
        if fkey in self.frames:
            self.frames.move_to_end(fkey)
            return self.frames[fkey]
        skin = skin_map(np.random.default_rng(rng_seed), look_row, size)
        vig = vignette_map(look_row, size)
        self.frames[fkey] = (skin, vig, skin * vig)
        if len(self.frames) > self.max_frames:
            self.frames.popitem(last=False)
        return self.frames[fkey]


def skin_map(rng: np.random.Generator, look: dict, size: tuple[int, int]) -> torch.Tensor:
    """Skin intensity (H, W): blotches + pores, lit by the LEDs around the eye (brighter near it)."""
    H, W = size
    k = look["skin_texture"]
    octaves = [(3, 0.035 * k), (8, 0.03 * k), (25, 0.02 * k), (80, 0.02 * k), (200, 0.015 * k), (400, 0.012 * k)]
    rel = torch.from_numpy(fractal_scaled(rng, size, octaves))
    y = (torch.arange(H, dtype=torch.float32)[:, None] + 0.5) / W
    x = (torch.arange(W, dtype=torch.float32)[None, :] + 0.5) / W
    ex, ey = look["eye_cx"], look["eye_cy"] * H / W
    d2 = (x - ex) ** 2 + 1.6 * (y - ey) ** 2
    light = 1.0 - 0.9 * look["light_falloff"] * d2
    # The brow above is further from the LEDs: a soft darker band across the top.
    brow = 1.0 - 0.18 * torch.sigmoid((ey - 0.29 * 1.0 - y) * 40.0)
    return look["skin_level"] * (1.0 + rel) * light.clamp_min(0.3) * brow


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
    jit = torch.stack([torch.from_numpy(np.random.default_rng(int(s)).normal(0, 0.08, MAX_GLINTS).astype(np.float32))
                       for s in look["glint_jitter_seed"].tolist()])
    ang = look["glint_phase"][:, None] + 2 * math.pi * k[None] / count + jit
    ring_x = look["glint_ring"][:, None] * torch.cos(ang)
    ring_y = look["glint_ring"][:, None] * look["glint_aspect"][:, None] * torch.sin(ang)
    centre_u = 0.45 * g[:, 0] + look["glint_dx"] + state["glint_dx"]
    centre_v = 0.45 * g[:, 1] + look["glint_dy"] + state["glint_dy"]
    gx = cx[:, None] + ppu[:, None] * (centre_u[:, None] + ring_x) - x0
    gy = cy[:, None] + ppu[:, None] * (centre_v[:, None] + ring_y) - y0
    active = (k[None] < count).float()
    sigma = (look["glint_sigma"] * ppu).clamp_min(0.45)                       # (B,)
    half = int(min(max(math.ceil(3 * sigma.max().item()), 1), 10))
    off = torch.arange(-half, half + 1, dtype=torch.float32)
    px = gx.round()[..., None, None] + off[None, None, None, :]              # (B,K,1,S)
    py = gy.round()[..., None, None] + off[None, None, :, None]              # (B,K,S,1)
    d2 = (px - gx[..., None, None]) ** 2 + (py - gy[..., None, None]) ** 2
    val = (look["glint_gain"][:, None, None, None] * torch.exp(-0.5 * d2 / sigma[:, None, None, None] ** 2)).clamp(max=1.0)
    val = val * active[..., None, None]
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


def render_eye(geom: dict, look: dict, state: dict, size: tuple[int, int], textures: list[dict],
               frames: list[tuple], noise: torch.Tensor | None = None, stages=ALL_STAGES,
               return_layers: bool = False, quantize: bool = False) -> dict:
    """Render a batch of NIR eye frames from explicit parameters.

    ``geom``/``look``/``state``: dicts of (B,) tensors (see :mod:`eye_model`, :data:`NIR_RANGES`).
    ``textures``: per image, the person's textures (:meth:`NIRTextureCache.person`);
    ``frames``: per image, (skin, vignette, skin × vignette) maps from :meth:`NIRTextureCache.frame`;
    ``noise``: optional (B, H, W) unit-variance sensor noise. ``stages``: a subset of
    :data:`ALL_STAGES` — the eyeball alone, + iris and pupil, + lids, + glints, + texture (skin,
    iris relief, lashes, crease, vignette, noise); the mask follows the stages drawn.

    Returns ``image`` (B, H, W) — float 0..255, or uint8 if ``quantize`` — ``mask`` uint8
    (B, H, W), ``landmarks`` (B, 7, 2) and ``eyelid`` (B, 64, 2) pixel (x, y), all mirrored for
    left eyes, and with ``return_layers`` a list (one per chunk) of the box-sized intermediate
    fields of :func:`eye_model.eye_fields` plus the box ``(y0, y1, x0, x1)``.
    """
    H, W = size
    B = state["pitch"].shape[0]
    cx, cy, ppu = frame_placement(look, state, size)
    lm_u, lid_u = em.eye_landmarks(geom, state)
    landmarks, eyelid = to_pixels(lm_u, cx, cy, ppu), to_pixels(lid_u, cx, cy, ppu)
    image = torch.empty(B, H, W, dtype=torch.uint8 if quantize else torch.float32)
    mask = torch.empty(B, H, W, dtype=torch.uint8)
    # Work in chunks of about a megabyte per intermediate tensor: big tensors cost far more per
    # element on a CPU (fresh pages on every allocation) than cache-sized ones.
    chunk = max(1, (1 << 18) // (H * W // 2))
    layers = []
    for a in range(0, B, chunk):
        sl = slice(a, min(a + chunk, B))
        pick = lambda d: {k: v[sl] for k, v in d.items()}
        img, msk, lay = _render_chunk(pick(geom), pick(look), pick(state), size, textures[sl], frames[sl],
                                      None if noise is None else noise[sl], set(stages),
                                      cx[sl], cy[sl], ppu[sl], eyelid[sl])
        image[sl] = img.clamp_(0, 255).round_() if quantize else img
        mask[sl] = msk
        if return_layers:
            layers.append(lay)
    out = {"image": image, "mask": mask,
           "landmarks": em.mirror_points(landmarks, state["mirror"], W, True),
           "eyelid": em.mirror_points(eyelid, state["mirror"], W, False)}
    if return_layers:
        out["layers"] = layers
    return out


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
    if with_lids:
        skin = skin * lid_shade(f, geom)

    # --- eyeball (eye box) -------------------------------------------------------------------
    skin_e = skin[:, ey, ex]
    above_e = f["above_upper"][:, ey, ex]
    # Sclera: lit from the front, darkening as the surface turns away towards the corners.
    sclera = col(look, "sclera_level") * (0.40 + 0.60 * f["sphere_z"].sqrt())
    if with_texture:  # faint uneven conjunctiva: reuse the skin's relief, weakened
        sclera = sclera * (0.6 + 0.4 / col(look, "skin_level") * skin_e)
    lid_shadow = em.tail(above_e * (1 / 0.15)) if with_lids else None  # upper lid + lashes shade the eyeball
    if with_lids:
        sclera = sclera * (1.0 - 0.5 * lid_shadow)
    eye = sclera
    if with_iris:
        rho, p_ratio = f["rho"], em.pupil_ratio(geom, state)[:, None, None]
        # Darker limbal ring at the iris edge.
        iris = col(look, "iris_level") * (1.0 - 0.4 * ((rho - 0.75) * 4.0).clamp(0, 1) ** 2)
        if with_texture:
            # Stroma coordinates: the relief stretches between the pupil edge and the limbus.
            s = ((rho - p_ratio) / (1.0 - p_ratio)).clamp(0.0, 1.0)
            scale = (0.25 + 0.75 * s) / rho.clamp_min(1e-4)
            grid = torch.stack([f["ia"] * scale, f["ib"] * scale], -1)
            tpp = 192 / (2 * (geom["iris_radius"] * ppu).min().item())
            relief = em.sample_texture([tx["iris"] for tx in textures], grid, tpp)[:, 0]
            iris = iris * (1.0 + col(look, "iris_contrast") * relief)
        if with_lids:
            iris = iris * (1.0 - 0.3 * lid_shadow)
        eye = torch.lerp(eye, iris, f["iris"])
        eye = torch.lerp(eye, col(look, "pupil_level").expand_as(eye), f["pupil"])
    if with_lids:    # caruncle: fleshy tissue in the nasal corner, darker than skin
        eye = torch.lerp(eye, 0.6 * skin_e, f["caruncle"])
    image = skin
    image[:, ey, ex] = torch.lerp(skin_e, eye, f["fissure"])

    # --- glints ------------------------------------------------------------------------------
    if with_glints:
        pitch, yaw = em.canonical_gaze(state)
        g, _, _ = em.gaze_axes(pitch, yaw)
        eh, ew = eb[1] - eb[0], eb[3] - eb[2]
        glints = _glints(look, state, g, cx, cy, ppu, (eye_box[0], eye_box[2]), eh, ew)
        image[:, ey, ex] += glints * f["fissure"] * 300.0

    # --- lashes, vignette, noise -------------------------------------------------------------
    if with_texture:
        if with_lids:
            (t_lo, t_hi), (d_lo, d_hi) = em.LASH_T_RANGE, em.LASH_D_RANGE
            gx = ((f["t"] - t_lo) * (2 / (t_hi - t_lo)) - 1)
            texel_px = (t_hi - t_lo) * em.LASH_UNITS_PER_T / 1024 * ppu.min().item()
            lvl = [tx["lashes"] for tx in textures]
            # Upper lashes grow upward from the upper margin (rows above the eye box's bottom),
            # lower ones downward (rows below the eye box's top).
            up_rows = slice(0, eb[1])
            a_up = f["above_upper"][:, up_rows]
            up_grid = torch.stack([gx.expand_as(a_up), (a_up - d_lo) * (2 / (d_hi - d_lo)) - 1], -1)
            lash_up = em.sample_texture(lvl, up_grid, 1.0 / texel_px)[:, 0]
            image[:, up_rows] *= 1.0 - col(look, "lash_darkness") * lash_up
            lo_rows = slice(eb[0], h)
            b_lo = f["below_lower"][:, lo_rows]
            lo_grid = torch.stack([gx.expand_as(b_lo), (b_lo - d_lo) * (2 / (d_hi - d_lo)) - 1], -1)
            lash_lo = em.sample_texture(lvl, lo_grid, 1.0 / texel_px)[:, 1]
            image[:, lo_rows] *= 1.0 - 0.8 * col(look, "lash_darkness") * lash_lo
        image *= torch.stack([fr[1][y0:y1, x0:x1] for fr in frames])
        full = torch.stack([fr[2] for fr in frames])
    else:
        full = col(look, "skin_level").expand(B, H, W).clone()
    full[:, y0:y1, x0:x1] = image
    mask = torch.zeros(B, H, W, dtype=torch.uint8)
    mask[:, eye_box[0]:eye_box[1], eye_box[2]:eye_box[3]] = f["mask"] if with_iris else f["mask"].clamp(max=1)
    if with_texture and noise is not None:
        full += noise * col(look, "noise_sigma")

    mirror = state["mirror"].bool()
    if mirror.any():
        full[mirror] = full[mirror].flip(-1)
        mask[mirror] = mask[mirror].flip(-1)
    f.update(lid_box=lid_box, eye_box_frame=eye_box)
    return full, mask, f
