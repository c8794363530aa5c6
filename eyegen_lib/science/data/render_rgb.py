"""Columbia-like RGB eye patches (64 × 64, or DeepWarp's 41 rows × 51 columns, or any size).

A patch is one eye cut out of a face photo the way He et al. cut Columbia Gaze: a square
centred on the eye whose side is 3.4 × the radius of the circle enclosing the six eyelid
landmarks (here: of the person's eye looking ahead, so every gaze of one (person, index) shares
the same crop). The eye spans ~58 % of the width; the eyebrow's lower edge shows near the top.

Per person: skin tone and texture, an eyebrow, iris colour (brown, dark brown, hazel, green,
blue, grey, amber) and relief, sclera tint and veins, lash darkness, the studio lights' corneal
highlight(s), optionally eyeglass rims. Stages as in :mod:`render_nir`.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from . import eye_model as em
from .render_nir import ALL_STAGES, _sample_lids, defocus_blur, lid_pyramids, lid_shade, lid_textures, to_pixels
from .texture_cache import PersonTextures

__all__ = ["RGB_RANGES", "SKIN_TONES", "IRIS_COLOURS", "sample_rgb_look", "RGBTextureCache", "patch_placement",
           "render_eye"]

SKIN_EXTENT = 2.8   # the skin texture covers u, v ∈ [-2.8, 2.8] eye units around the eyeball
VEIN_EXTENT = 1.35
CHUNK_PIXELS = 1 << 18   # pixels per batch chunk: big enough to amortise per-op overhead, small enough for cache

# Skin tones from light to dark (sRGB); a person's tone interpolates between neighbours.
SKIN_TONES = np.array([[236, 204, 180], [222, 180, 150], [198, 148, 112], [165, 113, 80],
                       [128, 86, 58], [92, 62, 44]], np.float32)
# Iris base colours (outer stroma, inner collarette zone) and how often each occurs.
IRIS_COLOURS = {
    "dark_brown": ((58, 36, 24), (45, 28, 20), 0.30),
    "brown": ((102, 64, 36), (80, 48, 28), 0.25),
    "hazel": ((118, 104, 62), (120, 72, 34), 0.12),
    "amber": ((150, 100, 46), (128, 80, 36), 0.05),
    "green": ((92, 118, 78), (118, 96, 52), 0.10),
    "blue": ((92, 128, 168), (110, 122, 130), 0.12),
    "grey": ((122, 132, 140), (112, 112, 110), 0.06),
}

RGB_RANGES: dict[str, tuple[float, float]] = {
    "skin_tone": (0.0, 1.0),          # position along SKIN_TONES
    "skin_texture": (0.6, 1.4),
    "skin_redness": (-0.04, 0.06),
    "exposure": (0.82, 1.08),
    "light_gradient": (-0.18, 0.18),  # brighter on one side of the patch
    "sclera_brightness": (0.70, 0.88),
    "sclera_warmth": (0.0, 0.08),
    "vein_strength": (0.15, 0.6),
    "iris_brightness": (0.8, 1.25),
    "iris_contrast": (0.18, 0.35),
    "lash_darkness": (0.75, 0.95),
    "lash_length_scale": (0.85, 1.15),
    "brow_level": (-1.25, -0.95),     # eye units: the brow's lower edge above the eyeball centre
    "brow_thickness": (0.45, 0.75),
    "brow_density": (0.5, 1.0),
    "brow_arch": (0.0, 0.15),
    "highlight_u": (-0.25, 0.25),     # studio light reflection, relative to the cornea centre
    "highlight_v": (-0.32, -0.08),
    "highlight_size": (0.035, 0.07),
    "second_highlight": (0.0, 1.0),   # > 0.6: a second, weaker light
    "glasses": (0.0, 1.0),            # < 0.25: wears glasses
    "rim_u": (-0.25, 0.25),
    "rim_v": (-0.35, 0.05),
    "rim_width": (1.9, 2.3),
    "rim_height": (1.3, 1.7),
    "rim_thickness": (0.07, 0.16),
    "rim_darkness": (0.55, 0.9),
    "noise_sigma": (1.5, 4.0),
    # Baked into the person's skin texture (overriding them per image has no effect):
    "light_azimuth": (0.0, 6.2832),   # direction the key light comes from, in the image plane
    "light_tilt": (0.25, 0.75),       # how oblique it is (0 frontal)
    "under_eye_dark": (0.0, 0.08),    # darker, browner skin under the eye
    "lid_redness": (0.0, 0.06),
    "pore_strength": (0.5, 1.4),
    # Camera / glasses (per image variation comes from the state's "defocus"):
    "softness_px": (0.35, 0.65),      # JPEG/resampling softness (Gaussian σ at 64 px)
    "lens_reflection": (0.05, 0.22),
    "lens_refl_angle": (-0.9, 0.9),
    "lens_refl_offset": (-0.6, 0.6),
}


def sample_rgb_look(rng: np.random.Generator) -> dict[str, float]:
    """A person's RGB appearance (floats; colours as separate r/g/b entries)."""
    look = {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in RGB_RANGES.items()}
    # Skin tone → colour, with a little hue jitter.
    pos = look["skin_tone"] * (len(SKIN_TONES) - 1)
    i = min(int(pos), len(SKIN_TONES) - 2)
    skin = SKIN_TONES[i] + (pos - i) * (SKIN_TONES[i + 1] - SKIN_TONES[i])
    skin = skin * (1 + np.array([look["skin_redness"], 0.0, -look["skin_redness"]]))
    names = list(IRIS_COLOURS)
    probs = np.array([IRIS_COLOURS[n][2] for n in names])
    if look["skin_tone"] > 0.5:          # light irises are rare with dark skin
        probs = probs * np.array([3, 2, 1, 1, 0.2, 0.1, 0.1])
    name = names[rng.choice(len(names), p=probs / probs.sum())]
    outer, inner, _ = IRIS_COLOURS[name]
    jit = rng.normal(1.0, 0.08, 3)
    hair = np.array([40, 28, 20]) * rng.uniform(0.5, 1.3) if rng.random() < 0.85 else np.array([150, 115, 70])
    cols = {"skin": skin, "iris_outer": np.array(outer) * jit * look["iris_brightness"],
            "iris_inner": np.array(inner) * jit * look["iris_brightness"], "hair": hair,
            "sclera": np.array([235, 226, 218]) * (1 + np.array([look["sclera_warmth"], 0.0, -look["sclera_warmth"]]))
            * look["sclera_brightness"],
            "rim": np.array([30, 25, 22]) if rng.random() < 0.6 else np.array([90, 60, 40])}
    for k, c in cols.items():
        for ch, v in zip("rgb", c):
            look[f"{k}_{ch}"] = float(v)
    look["iris_name"] = float(names.index(name))
    return look


def _rgb(look: dict, name: str) -> torch.Tensor:
    """(B, 3, 1, 1) colour in 0..255 from the look's r/g/b entries."""
    return torch.stack([look[f"{name}_{c}"] for c in "rgb"], 1)[:, :, None, None]


# ----------------------------------------------------------------------------------------------
# Per-person textures
# ----------------------------------------------------------------------------------------------

class RGBTextureCache(PersonTextures):
    """Per-person textures: skin with eyebrow (3 × 160 × 160 over ±SKIN_EXTENT eye units),
    iris relief, lashes, sclera veins; each as mip levels, held in a byte-bounded LRU
    (:func:`~eyegen_lib.science.data.texture_cache.process_cache` unless ``cache`` is given)."""

    modality = "rgb"

    @staticmethod
    def _person(rng_seed: int, geom_row: dict, look_row: dict, lid_level: int = 0) -> dict:
        rng = np.random.default_rng(rng_seed)
        iris = torch.from_numpy(em.iris_structure_texture(rng))[None]
        upper, lower = lid_textures(rng, geom_row, look_row, rgb=True)
        skin = torch.from_numpy(skin_texture(rng, look_row))
        # Scleral veins resampled onto the skin texture's grid as a 4th channel: one lookup
        # over the patch gives skin colour and vessel coverage.
        veins = torch.from_numpy(vein_texture(rng))[None, None]
        coords = ((torch.arange(skin.shape[-1], dtype=torch.float32) + 0.5) / skin.shape[-1] * 2 - 1) * (SKIN_EXTENT / VEIN_EXTENT)
        gy, gx = torch.meshgrid(coords, coords, indexing="ij")
        veins = F.grid_sample(veins, torch.stack([gx, gy], -1)[None], mode="bilinear", padding_mode="zeros",
                              align_corners=False)[0]
        skin = torch.cat([skin, veins])

        return {"iris": em.mip_levels(iris), **lid_pyramids(upper, lower, rng_seed, geom_row, look_row, lid_level, rgb=True),
                "skin": em.mip_levels(skin, 4)}


def skin_texture(rng: np.random.Generator, look: dict, n: int = 160) -> np.ndarray:
    """(3, n, n) periocular skin colour in 0..255 with an eyebrow, over ±SKIN_EXTENT eye units."""
    from PIL import Image, ImageDraw

    k = look["skin_texture"]
    lum = em.fractal_noise(rng, (n, n), [(3, 0.02 * k), (8, 0.02 * k), (24, 0.02 * k), (80, 0.02 * k)])
    red = em.fractal_noise(rng, (n, n), [(4, 0.012), (12, 0.008)])
    base = np.array([look["skin_r"], look["skin_g"], look["skin_b"]], np.float32)[:, None, None]
    coords = (np.arange(n) + 0.5) / n * 2 * SKIN_EXTENT - SKIN_EXTENT
    v, u = np.meshgrid(coords, coords, indexing="ij")
    # Orbit shading: darker under the eye (tear trough) and just under the brow.
    orbit = 1 - 0.08 * np.exp(-((v - 1.0) / 0.3) ** 2) * np.exp(-(u / 1.6) ** 2)
    orbit -= 0.10 * np.exp(-((v - look["brow_level"] - 0.45) / 0.3) ** 2) * np.exp(-((u - 0.8) / 1.2) ** 2)
    orbit += 0.05 * np.exp(-((v - 1.9) / 0.5) ** 2)                       # cheek bone catches light
    # Directional light over the periocular relief: a height field (brow ridge, orbital hollow,
    # convex lids, tear trough, cheek, side of the nose) shaded by a per-person key light.
    bl = look["brow_level"]
    h = (0.30 * np.exp(-((v - bl + 0.05) / 0.4) ** 2) * np.exp(-((u - 0.2) / 2.2) ** 2)      # brow ridge
         - 0.12 * np.exp(-((v - 0.5 * (bl - 0.55)) / 0.3) ** 2 - (u / 1.2) ** 2)             # orbital hollow
         + 0.18 * np.exp(-(u / 1.25) ** 2 - (v / 0.75) ** 2)                                 # eyeball under the lids
         - 0.05 * np.exp(-((v - 1.0) / 0.25) ** 2 - (u / 1.2) ** 2)                          # tear trough
         + 0.25 * np.exp(-((v - 2.1) / 0.6) ** 2)                                            # cheek
         + 0.55 / (1 + np.exp(-(u - 2.0) / 0.25)))                                           # nose side
    dv_, du_ = np.gradient(h, coords, coords)
    nz = 1.0 / np.sqrt(1 + du_ ** 2 + dv_ ** 2)
    az, tilt = look.get("light_azimuth", 1.0), look.get("light_tilt", 0.5)
    lx, ly, lz = math.sin(tilt) * math.cos(az), math.sin(tilt) * math.sin(az), math.cos(tilt)
    lambert = np.clip((-du_ * lx - dv_ * ly + lz) * nz, 0, None) / lz
    orbit = orbit * (0.5 + 0.5 * lambert)
    # Skin colour variation: redder lids and inner corner, a darker browner under-eye.
    red = red + look.get("lid_redness", 0.03) * (np.exp(-(u / 1.5) ** 2 - ((v + 0.2) / 0.7) ** 2)
                                                 + np.exp(-((u - 1.5) / 0.35) ** 2 - ((v - 0.1) / 0.35) ** 2))
    under = look.get("under_eye_dark", 0.05) * np.exp(-((v - 0.95) / 0.3) ** 2 - (u / 1.5) ** 2)
    orbit = orbit * (1 - under)
    # Fine texture: pores (texel-sized dark dots) and fine lines.
    pores = (rng.random((n, n)) > 0.93).astype(np.float32)
    lum = lum - 0.035 * look.get("pore_strength", 1.0) * k * pores + em.fractal_noise(rng, (n, n), [(n // 2, 0.012 * k)])
    skin = base * (1 + lum)[None] * orbit[None] * (1 + np.stack([red, -0.3 * under, -red - under]))
    # Eyebrow: many short hairs inside a band above the eye, thicker nasally, rising then
    # falling towards the temporal end; drawn on a 3× canvas for coverage.
    ss = 3
    canvas = Image.new("L", (n * ss, n * ss), 0)
    draw = ImageDraw.Draw(canvas)
    to_px = lambda uu, vv: ((uu + SKIN_EXTENT) / (2 * SKIN_EXTENT) * n * ss, (vv + SKIN_EXTENT) / (2 * SKIN_EXTENT) * n * ss)
    n_hairs = int(900 * look["brow_density"])
    for _ in range(n_hairs):
        uu = rng.uniform(-2.2, 2.0)                      # temporal (left) → nasal (right)
        along = (uu + 2.2) / 4.2
        lower = look["brow_level"] - look["brow_arch"] * np.sin(np.pi * np.clip(along * 1.2, 0, 1)) + 0.15 * (along < 0.15) * (0.15 - along) * 4
        thick = look["brow_thickness"] * (0.45 + 0.55 * np.clip(along * 1.6, 0, 1))
        vv = lower - rng.beta(1.6, 1.6) * thick
        ang = math.radians(rng.normal(-120 if along > 0.8 else -155, 12))   # hairs point temporally and up
        L = rng.uniform(0.12, 0.28)
        x0, y0 = to_px(uu, vv)
        x1, y1 = to_px(uu + L * math.cos(ang), vv + L * math.sin(ang))
        draw.line([(x0, y0), (x1, y1)], fill=int(255 * rng.uniform(0.5, 1.0)), width=max(1, int(ss * 0.7)))
    cover = np.asarray(canvas.resize((n, n), Image.BOX), np.float32) / 255.0
    hair = np.array([look["hair_r"], look["hair_g"], look["hair_b"]], np.float32)[:, None, None]
    skin = skin * (1 - 0.9 * cover[None]) + hair * 0.9 * cover[None]
    return skin.astype(np.float32)


def vein_texture(rng: np.random.Generator, n: int = 128) -> np.ndarray:
    """Scleral vessel coverage (0..1) over ±VEIN_EXTENT eye units: thin wandering vessels
    entering from the corners, branching, thinning towards the cornea."""
    from PIL import Image, ImageDraw

    ss = 2
    canvas = Image.new("L", (n * ss, n * ss), 0)
    draw = ImageDraw.Draw(canvas)
    scale = n * ss / (2 * VEIN_EXTENT)
    for _ in range(int(rng.integers(8, 18))):
        side = rng.choice([-1, 1])
        u, v = side * rng.uniform(0.9, 1.3), rng.normal(0.0, 0.3)
        ang = math.atan2(-v * 0.3, -side) + rng.normal(0, 0.5)
        width = rng.uniform(1.0, 2.2)
        for _ in range(int(rng.integers(8, 20))):
            step = rng.uniform(0.03, 0.07)
            ang += rng.normal(0, 0.45)
            u2, v2 = u + step * math.cos(ang), v + step * math.sin(ang)
            draw.line([((u + VEIN_EXTENT) * scale, (v + VEIN_EXTENT) * scale),
                       ((u2 + VEIN_EXTENT) * scale, (v2 + VEIN_EXTENT) * scale)], fill=int(255 * rng.uniform(0.4, 0.9)), width=max(1, int(width)))
            u, v, width = u2, v2, width * 0.93
            if abs(u) < 0.45:
                break
    return np.asarray(canvas.resize((n, n), Image.BOX), np.float32) / 255.0


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------

def patch_placement(geom: dict, state: dict, size: tuple[int, int]):
    """He et al.'s crop: pixel (cx, cy) of the eyeball centre and pixels per eye unit, (B,) each.

    The crop square's side is 3.4 × the radius of the circle enclosing the six eyelid landmarks
    of the eye looking ahead (wide open); the patch width spans that side (for 41 × 51 the height
    covers 41/51 of it); ``shift_x/y`` and ``scale`` jitter the crop like a landmark detector.
    """
    H, W = size
    neutral = dict(state, pitch=torch.zeros_like(state["pitch"]), yaw=torch.zeros_like(state["yaw"]),
                   blink=torch.zeros_like(state["blink"]), openness=torch.ones_like(state["openness"]))
    lm, _ = em.eye_landmarks(geom, neutral)
    pts = lm[:, :6]
    centre = 0.5 * (pts[:, 0] + pts[:, 3])
    radius = (pts - centre[:, None]).norm(dim=-1).max(1).values     # corners span the circle
    ppu = W / (3.4 * radius) * state["scale"]
    cx = (W - 1) / 2 - ppu * (centre[:, 0] + 0.5 * state["shift_x"])
    cy = (H - 1) / 2 - ppu * (centre[:, 1] + 0.5 * state["shift_y"])
    return cx, cy, ppu


def render_eye(geom: dict, look: dict, state: dict, size: tuple[int, int], textures: list[dict],
               noise: torch.Tensor | None = None, stages=ALL_STAGES, return_layers: bool = False,
               quantize: bool = False) -> dict:
    """Render a batch of RGB eye patches from explicit parameters.

    ``geom``/``look``/``state``: dicts of (B,) tensors; ``textures``: per image, the person's
    textures (:meth:`RGBTextureCache.person`); ``noise``: optional (B, 3, H, W) unit noise, or a
    list of B (3, H, W) tensors.
    Returns ``image`` (B, 3, H, W) float 0..255 (uint8 if ``quantize``), ``mask`` uint8
    (B, H, W), ``landmarks`` (B, 7, 2), ``eyelid`` (B, 64, 2) pixel (x, y), mirrored for left eyes.
    """
    H, W = size
    B = state["pitch"].shape[0]
    cx, cy, ppu = patch_placement(geom, state, size)
    lm_u, lid_u = em.eye_landmarks(geom, state)
    landmarks, eyelid = to_pixels(lm_u, cx, cy, ppu), to_pixels(lid_u, cx, cy, ppu)
    image = torch.empty(B, 3, H, W, dtype=torch.uint8 if quantize else torch.float32)
    mask = torch.empty(B, H, W, dtype=torch.uint8)
    chunk = max(1, CHUNK_PIXELS // (H * W))
    def render_slice(sl):
        pick = lambda d: {k: v[sl] for k, v in d.items()}
        return _render_chunk(pick(geom), pick(look), pick(state), size, textures[sl],
                             em.noise_of_chunk(noise, sl), set(stages), cx[sl], cy[sl], ppu[sl], eyelid[sl])

    return em.render_in_chunks(render_slice, image, mask, chunk, quantize=quantize, landmarks=landmarks,
                               eyelid=eyelid, mirror=state["mirror"], return_layers=return_layers)


def _render_chunk(geom, look, state, size, textures, noise, stages, cx, cy, ppu, eyelid):
    H, W = size
    with_iris, with_lids = "iris" in stages, "lids" in stages
    with_glints, with_texture = "glints" in stages, "texture" in stages
    B = cx.shape[0]
    col = lambda k: look[k][:, None, None, None]
    col1 = lambda d, k: d[k][:, None, None]
    xs = torch.arange(W, dtype=torch.float32)[None, None, :]
    ys = torch.arange(H, dtype=torch.float32)[None, :, None]
    u_all = (xs - cx[:, None, None]) / ppu[:, None, None]
    v_all = (ys - cy[:, None, None]) / ppu[:, None, None]

    # --- skin with eyebrow (whole patch) -----------------------------------------------------
    if with_texture:
        grid = torch.stack([(u_all / SKIN_EXTENT).expand(B, H, W), (v_all / SKIN_EXTENT).expand(B, H, W)], -1)
        image = em.sample_texture([tx["skin"] for tx in textures], grid, 160 / (2 * SKIN_EXTENT) / ppu,
                                  padding_mode="border")
        veins_all, image = image[:, 3], image[:, :3]
    else:
        image = _rgb(look, "skin").expand(B, 3, H, W).clone()

    # --- lids (lid box) and eyeball (eye box) ------------------------------------------------
    top_margin = (geom["lash_length"] * look["lash_length_scale"] * 1.3 + 0.1).clamp_min(geom["crease_height"] + 0.3)
    lid_box, eye_box = em.eye_boxes(geom, top_margin, cx, cy, ppu, eyelid, size, with_lids)
    y0, y1, x0, x1 = lid_box
    eb = (eye_box[0] - y0, eye_box[1] - y0, eye_box[2] - x0, eye_box[3] - x0)
    ey, ex = slice(eb[0], eb[1]), slice(eb[2], eb[3])
    u, v = u_all[:, :, x0:x1], v_all[:, y0:y1]
    f = em.eye_fields(u, v, geom, state, ppu, lids=with_lids, edge_px=1.25, eye_box=eb)
    skin = image[:, :, y0:y1, x0:x1]
    h = y1 - y0
    up_rows, lo_rows = slice(0, eb[1]), slice(eb[0], h)
    lid_up = lid_lo = None
    if with_lids and with_texture and "upper" in textures[0]:
        # Baked per-person lid textures: lashes, crease, lash line, waterline, folds, lash shadow.
        lid_up, lid_lo = _sample_lids(f, textures, ppu, up_rows, lo_rows)
        skin[:, :, up_rows] *= (1.0 + lid_up[:, 1])[:, None]
        skin[:, :, lo_rows] *= (1.0 + lid_lo[:, 1])[:, None]
    elif with_lids:
        t = f["t"]
        lid_span = ((t + 0.02) / 0.08).clamp(0, 1) * ((1.02 - t) / 0.08).clamp(0, 1)
        lash_line = 1.0 - 0.55 * lid_span * em.bump((f["above_upper"] - 0.02) * 22.0)
        skin = skin * (lid_shade(f, geom) * lash_line)[:, None]
    skin_e = skin[:, :, ey, ex]
    u_e, v_e = u[:, :, ex], v[:, ey]
    shade = 0.5 + 0.5 * f["sphere_z"].sqrt()
    if with_lids:   # shadow of the upper lid and lashes on the eyeball, deepest mid-lid
        t_e = f["t"][:, :, ex]
        reach = 0.12 + 0.12 * torch.sin(math.pi * t_e.clamp(0, 1))
        shadow = 0.55 * em.tail(f["above_upper"][:, ey, ex] / reach)
        if lid_up is not None:
            shadow = shadow + 1.3 * lid_up[:, 2, eb[0]:, ex]
        shade = shade * (1.0 - shadow.clamp(max=0.85))
    sclera = _rgb(look, "sclera") * shade[:, None]
    if with_texture:
        veins = veins_all[:, y0:y1, x0:x1][:, ey, ex]
        vessel = torch.tensor([0.1, 0.55, 0.5])[None, :, None, None]          # red vessels absorb G, B
        sclera = sclera * (1.0 - (col1(look, "vein_strength") * veins)[:, None] * vessel)
    eye = sclera
    # The iris and pupil are drawn inside the box where the iris shows (cheaper than the eye box).
    window = em.alpha_window(f["iris"]) if with_iris else None
    if window is not None:
        iy, ix = window
        box = lambda name: f[name][:, iy, ix]
        shade_i = shade[:, iy, ix]
        rho, p_ratio = box("rho"), em.pupil_ratio(geom, state)[:, None, None]
        s = ((rho - p_ratio) / (1.0 - p_ratio)).clamp(0.0, 1.0)
        inner = em.bump(s * (1 / 0.35))[:, None]                             # collarette zone colour
        iris = torch.lerp(_rgb(look, "iris_outer"), _rgb(look, "iris_inner"), inner)
        limbal = (1.0 - 0.55 * ((rho - 0.72) * (1 / 0.28)).clamp(0, 1) ** 2)
        if with_texture:
            scale = (0.25 + 0.75 * s) / rho.clamp_min(1e-4)
            grid = torch.stack([box("ia") * scale, box("ib") * scale], -1)
            tpp = 192 / (2 * geom["iris_radius"] * ppu)  # per image
            relief = em.sample_texture([tx["iris"] for tx in textures], grid, tpp)[:, 0]
            limbal = limbal * (1.0 + col1(look, "iris_contrast") * relief)
        iris = iris * (limbal * shade_i)[:, None]
        part = torch.lerp(eye[:, :, iy, ix], iris, box("iris")[:, None])
        pupil = torch.tensor([14.0, 11.0, 11.0])[None, :, None, None] * shade_i[:, None]
        eye[:, :, iy, ix] = torch.lerp(part, pupil.expand_as(part), box("pupil")[:, None])
    if with_lids:   # caruncle: pink, moist, lumpy, convex
        dome = (1.0 - f["caruncle_q"]).clamp(0.0, 1.0)[:, None]
        car = skin_e * torch.tensor([0.92, 0.58, 0.58])[None, :, None, None] * (0.8 + 0.35 * dome)
        eye = torch.lerp(eye, car, f["caruncle"][:, None])
    eye = torch.lerp(skin_e, eye, f["fissure"][:, None])

    # --- corneal highlight(s) of the studio lights --------------------------------------------
    if with_glints:
        pitch, yaw = em.canonical_gaze(state)
        g, _, _ = em.gaze_axes(pitch, yaw)
        spec = 0.0
        for k, gain in ((0, 1.0), (1, 0.6)):
            hu = 0.45 * g[:, 0] + look["highlight_u"] + k * 0.22
            hv = 0.45 * g[:, 1] + look["highlight_v"] + k * 0.05
            sig = (look["highlight_size"] * ppu).clamp_min(0.45) / ppu * (1 - 0.3 * k)
            on = torch.ones_like(hu) if k == 0 else (look["second_highlight"] > 0.6).float()
            inv = (1 / sig)[:, None, None]
            d = torch.sqrt(((u_e - hu[:, None, None]) * inv) ** 2 + ((v_e - hv[:, None, None]) * inv) ** 2)
            spec = spec + (gain * on)[:, None, None] * em.bump(d * 0.7)
        eye = eye + (230.0 * spec.clamp(max=1.0) * f["fissure"])[:, None]
    skin[:, :, ey, ex] = eye

    # --- lashes ------------------------------------------------------------------------------
    if lid_up is not None:
        lash_col = 0.6 * _rgb(look, "hair")
        dark = col1(look, "lash_darkness")[:, None]
        for rows, lid, gain in ((up_rows, lid_up, 1.0), (lo_rows, lid_lo, 0.8)):
            part = skin[:, :, rows]
            skin[:, :, rows] = torch.lerp(part, lash_col.expand_as(part), (gain * dark) * lid[:, :1])
    image[:, :, y0:y1, x0:x1] = skin

    # --- glasses, exposure, noise --------------------------------------------------------------
    if with_texture:
        image = _glasses(image, u_all, v_all, look, ppu)
        light = look["exposure"][:, None, None] * (1.0 + look["light_gradient"][:, None, None] * 0.5 * u_all)
        image = image * light[:, None]
        soft = look["softness_px"] if "softness_px" in look else torch.full((B,), 0.5)
        gain = state["defocus"] if "defocus" in state else torch.ones(B)
        image = defocus_blur(image, soft * gain.sqrt() * (W / 64.0))
        if noise is not None:
            n_gain = state["noise_gain"] if "noise_gain" in state else torch.ones(B)
            image = image + noise * (look["noise_sigma"] * n_gain)[:, None, None, None]
    mask = torch.zeros(B, H, W, dtype=torch.uint8)
    mask[:, eye_box[0]:eye_box[1], eye_box[2]:eye_box[3]] = f["mask"] if with_iris else f["mask"].clamp(max=1)
    f.update(lid_box=lid_box, eye_box_frame=eye_box)
    return image, mask, f


def _glasses(image, u, v, look, ppu):
    """Eyeglasses for people whose ``glasses`` draw is < 0.25: a rounded-rectangle rim (dark
    frame) around the eye and a faint lens sheen. Occlusion only: the mask is unchanged."""
    wears = look["glasses"] < 0.25
    if not wears.any():
        return image
    if not wears.all():   # draw only on the images whose person wears glasses
        sel = torch.nonzero(wears)[:, 0]
        sub = {k: val.index_select(0, sel) for k, val in look.items()}
        image[sel] = _glasses(image.index_select(0, sel), u.index_select(0, sel), v.index_select(0, sel), sub,
                              ppu.index_select(0, sel))
        return image
    c = lambda k: look[k][:, None, None]
    du = (u - c("rim_u")).abs() / c("rim_width")
    dv = (v - c("rim_v")).abs() / c("rim_height")
    q = (du ** 4 + dv ** 4) ** 0.25                                      # superellipse "radius"
    grad = torch.sqrt((du ** 3 / c("rim_width")) ** 2 + (dv ** 3 / c("rim_height")) ** 2) / q.clamp_min(1e-3) ** 3
    dist = (q - 1.0).abs() / grad.clamp_min(1e-3) - 0.5 * c("rim_thickness")  # eye units from the rim
    rim = (0.5 - dist * ppu[:, None, None]).clamp(0, 1)
    inside = (q < 1).float()
    sheen = 0.06 * em.bump((u + v - 0.6) * 2.0) * inside
    if "lens_reflection" in look:   # reflections of the room/window on the lens: broad soft bands
        ang = c("lens_refl_angle")
        along = (u - c("rim_u")) * torch.cos(ang) + (v - c("rim_v")) * torch.sin(ang) - c("lens_refl_offset")
        band = em.bump(along * 3.0) + 0.5 * em.bump((along + 0.55) * 6.0)
        across = (v - c("rim_v")) * torch.cos(ang) - (u - c("rim_u")) * torch.sin(ang)
        sheen = sheen + c("lens_reflection") * band * (0.6 + 0.4 * torch.cos(across * 2.0)) * inside
        image = image * (1.0 - 0.05 * inside[:, None])   # a little light lost in the lens
    image = image + (255.0 - image) * sheen.clamp(max=0.6)[:, None]
    rim_col = torch.stack([look[f"rim_{k}"] for k in "rgb"], 1)[:, :, None, None] * (1.1 - c("rim_darkness"))[:, None]
    return torch.lerp(image, rim_col.expand_as(image), rim[:, None])
