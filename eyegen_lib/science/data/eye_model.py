"""The 3-D eye shared by the NIR and RGB renderers: geometry, identity and per-image state.

Units and frames
----------------
*Eye units*: lengths are in eyeball radii (1 eye unit ≈ 12 mm). The camera frame is the one of
:mod:`eyegen_lib.core.gaze`: ``u`` to the image right, ``v`` down (towards larger rows), ``z`` away
from the camera; the projection is orthographic (a close-up eye is ~2.5 cm deep, the camera
several cm away, so perspective barely matters).

*Canonical layout*: every eye is modelled as a RIGHT eye seen from the front — temporal
(lateral) corner at the image left, nasal (medial) corner with the lacrimal caruncle at the image
right. A left eye is rendered in this layout and mirrored (``x → W-1-x``); the yaw used for the
canonical render is then negated, so labels always follow the project convention in *image*
terms (yaw > 0 moves the pupil towards column 0, pitch > 0 towards row 0).

Parameters travel as dicts of float tensors with a leading batch dimension:

* ``geom``  — a person's eye shape (:data:`GEOMETRY_RANGES`), fixed for a person;
* ``state`` — what changes from image to image (:data:`STATE_KEYS`): gaze, pupil, lids, jitter.

Every draw comes from a ``numpy.random.Generator`` seeded from (dataset seed, purpose, id) by
:func:`rng_for`, never from global RNG state.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ...core.gaze import pitchyaw_to_vector
from .texture_cache import MipPyramid, mip_levels

__all__ = [
    "GEOMETRY_RANGES", "STATE_KEYS", "LANDMARK_NAMES", "N_EYELID_POINTS", "render_in_chunks", "noise_of_chunk",
    "rng_for", "sample_geometry", "bump", "tail", "eye_boxes", "stack_params", "canonical_gaze", "gaze_axes", "pupil_ratio",
    "lid_curves", "eye_landmarks", "eye_fields", "mirror_points", "polar_noise_texture",
    "fractal_noise", "iris_structure_texture", "lash_texture", "mip_levels", "MipPyramid", "mip_level_of", "sample_texture",
]

# Uniform ranges of a person's eye shape (eye units unless said otherwise).
GEOMETRY_RANGES: dict[str, tuple[float, float]] = {
    "iris_radius": (0.46, 0.54),        # limbus radius: an 11-13 mm iris on a 24 mm eyeball
    "pupil_ratio": (0.30, 0.48),        # resting pupil radius / iris radius
    "lateral_extent": (1.00, 1.12),     # temporal corner's distance from the eyeball centre
    "medial_extent": (1.10, 1.26),      # nasal corner (the fissure is wider than the eyeball)
    "corner_level": (0.00, 0.12),       # v of the corners' midpoint (corners sit a bit low)
    "canthal_tilt": (0.00, 0.16),       # the temporal corner is higher by this much
    "upper_height": (0.46, 0.60),       # upper lid apex above the corner line, looking ahead
    "lower_height": (0.36, 0.50),       # lower lid nadir below the corner line
    "upper_peak": (0.47, 0.62),         # where the upper apex is (t: 0 temporal → 1 nasal)
    "lower_peak": (0.36, 0.50),
    "upper_roundness": (0.55, 0.85),    # exponent of the lid bump: small = rounder opening
    "lower_roundness": (0.65, 0.95),
    "lid_follow": (0.80, 1.00),         # upper lid rise per unit sin(pitch): it rides the iris
    "lower_follow": (0.40, 0.60),       # the lower lid follows far less
    "openness": (0.88, 1.04),           # this person's typical opening
    "crease_height": (0.30, 0.55),      # lid crease above the upper lid margin
    "crease_strength": (0.15, 0.60),
    "lash_density": (0.55, 1.00),
    "lash_length": (0.24, 0.42),
    "caruncle_size": (0.05, 0.09),
    "caruncle_phase": (0.0, 6.2832),    # irregularity of the caruncle's outline
}

# Per-image state keys (tensors (B,)): gaze label in image terms, then everything else.
STATE_KEYS = ("pitch", "yaw", "mirror", "pupil_scale", "openness", "blink",
              "shift_x", "shift_y", "scale", "glint_dx", "glint_dy")

# DeepWarp / dlib order, in IMAGE terms for both sides: start at the image-left corner, go
# along the upper lid to the image-right corner, come back along the lower lid; then the pupil.
LANDMARK_NAMES = ("left_corner", "upper_left", "upper_right", "right_corner",
                  "lower_right", "lower_left", "pupil_centre")
N_EYELID_POINTS = 32  # per lid; `eyelid` = 32 upper then 32 lower, both image-left → right


def rng_for(seed: int, purpose: int, *ids: int) -> np.random.Generator:
    """A numpy Generator that depends only on (seed, purpose, ids): a pure function of them."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(purpose), *map(int, ids)]))


def sample_geometry(rng: np.random.Generator) -> dict[str, float]:
    """One person's eye shape: a uniform draw inside :data:`GEOMETRY_RANGES`."""
    return {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in GEOMETRY_RANGES.items()}


def stack_params(rows: list[dict], keys=None) -> dict[str, torch.Tensor]:
    """List of per-item dicts of floats → dict of (B,) float32 tensors."""
    keys = list(keys if keys is not None else rows[0].keys())
    # One float64 table, rounded to float32 once (as torch.tensor would, value by value): one
    # conversion per batch instead of one per key.
    table = torch.as_tensor(np.array([[r[k] for k in keys] for r in rows], dtype=np.float64).astype(np.float32))
    return dict(zip(keys, table.t().contiguous().unbind(0)))


def canonical_gaze(state: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(pitch, yaw) for the canonical right-eye layout: mirrored eyes get their yaw negated."""
    sign = 1.0 - 2.0 * state["mirror"]
    return state["pitch"], state["yaw"] * sign


def gaze_axes(pitch: torch.Tensor, yaw: torch.Tensor):
    """Optical axis ``g`` (eyeball centre → cornea, towards the camera at (0,0)) and two unit
    vectors ``e1`` (horizontal) and ``e2`` (down) spanning the iris plane. Each (B, 3)."""
    g = -pitchyaw_to_vector(torch.stack([pitch, yaw], -1))  # the label vector points away from the eye's front
    e1 = torch.stack([-g[:, 2], torch.zeros_like(pitch), g[:, 0]], -1)
    e1 = e1 / e1.norm(dim=-1, keepdim=True)
    e2 = torch.cross(e1, g, dim=-1)
    return g, e1, e2


def pupil_ratio(geom: dict, state: dict) -> torch.Tensor:
    """Pupil radius / iris radius for each image (dilation = person's resting size × state)."""
    return (geom["pupil_ratio"] * state["pupil_scale"]).clamp(0.12, 0.85)


def _lid_bump(t: torch.Tensor, peak: torch.Tensor, power: torch.Tensor) -> torch.Tensor:
    """0 at both corners, 1 at the apex ``peak``; ``power`` < 1 makes the opening rounder."""
    t = t.clamp(0.0, 1.0)
    warp = math.log(0.5) / torch.log(peak)
    tw = t.pow(warp)  # moves the apex from t = 0.5 to t = peak
    return (4.0 * tw * (1.0 - tw)).clamp_min(0.0).pow(power)


def lid_curves(geom: dict, state: dict, t: torch.Tensor):
    """Upper and lower lid margins ``v`` (eye units, canonical) at fissure positions ``t``.

    ``t``: (B, N), 0 at the temporal corner and 1 at the nasal one. The upper lid rides the
    iris (it rises when looking up, drops when looking down), the lower lid follows a little;
    ``openness`` scales the opening and ``blink`` closes it: at 1 both lids meet on a line a
    little below the corners.
    """
    c = {k: v[:, None] for k, v in geom.items()}
    s = {k: v[:, None] for k, v in state.items()}
    pitch, _ = canonical_gaze(state)
    sin_pitch = torch.sin(pitch)[:, None]
    v_lat = c["corner_level"] - 0.5 * c["canthal_tilt"]
    v_med = c["corner_level"] + 0.5 * c["canthal_tilt"]
    line = v_lat + t * (v_med - v_lat)
    opening = c["openness"] * s["openness"]
    upper_h = ((c["upper_height"] + c["lid_follow"] * sin_pitch) * opening).clamp_min(0.0)
    lower_h = ((c["lower_height"] - c["lower_follow"] * sin_pitch) * (0.7 + 0.3 * opening)).clamp_min(0.05)
    bump_u = _lid_bump(t, c["upper_peak"], c["upper_roundness"])
    bump_l = _lid_bump(t, c["lower_peak"], c["lower_roundness"])
    upper = line - upper_h * bump_u
    lower = line + lower_h * bump_l
    closed = line + 0.3 * c["lower_height"] * bump_l
    blink = s["blink"]
    upper = upper + blink * (closed - upper)
    lower = lower + blink * (closed - lower)
    return torch.minimum(upper, lower), lower


def _fissure_u(geom: dict, t: torch.Tensor) -> torch.Tensor:
    """u of fissure position t (B, N)."""
    lat, med = geom["lateral_extent"][:, None], geom["medial_extent"][:, None]
    return -lat + t * (lat + med)


def eye_landmarks(geom: dict, state: dict):
    """Canonical-layout landmarks in eye units.

    Returns ``(landmarks (B,7,2), eyelid (B,64,2))`` as (u, v), ordered temporal → nasal
    (= image-left → right in the canonical layout); see :func:`mirror_points` for left eyes.
    """
    B = geom["iris_radius"].shape[0]
    t6 = torch.tensor([0.0, 1 / 3, 2 / 3, 1.0], dtype=torch.float32).expand(B, 4)
    up, lo = lid_curves(geom, state, t6)
    u6 = _fissure_u(geom, t6)
    pts = [(u6[:, 0], up[:, 0]), (u6[:, 1], up[:, 1]), (u6[:, 2], up[:, 2]), (u6[:, 3], up[:, 3]),
           (u6[:, 2], lo[:, 2]), (u6[:, 1], lo[:, 1])]
    pitch, yaw = canonical_gaze(state)
    g, _, _ = gaze_axes(pitch, yaw)
    # The pupil is a circle on the sphere; its projected ellipse is centred on the projection of
    # the circle's centre, which lies cos(θ_pupil) along the optical axis.
    sin_p = (geom["iris_radius"] * pupil_ratio(geom, state)).clamp(max=0.99)
    depth = torch.sqrt(1.0 - sin_p ** 2)
    pts.append((depth * g[:, 0], depth * g[:, 1]))
    landmarks = torch.stack([torch.stack(p, -1) for p in pts], 1)
    tn = torch.linspace(0.0, 1.0, N_EYELID_POINTS).expand(B, N_EYELID_POINTS)
    up, lo = lid_curves(geom, state, tn)
    un = _fissure_u(geom, tn)
    eyelid = torch.cat([torch.stack([un, up], -1), torch.stack([un, lo], -1)], 1)
    return landmarks, eyelid


def mirror_points(points: torch.Tensor, mirror: torch.Tensor, width: int, landmark_order: bool):
    """Mirror (x, y) pixel points of the images with ``mirror`` = 1 about the frame's centre
    column and restore the image-left → right order (of the 7 landmarks or the 64 lid points)."""
    flipped = points.clone()
    flipped[..., 0] = (width - 1) - flipped[..., 0]
    if landmark_order:   # corners swap, upper/lower pairs swap, the pupil stays last
        flipped = flipped[:, [3, 2, 1, 0, 5, 4, 6]]
    else:                # each lid's 32 points are reversed
        n = points.shape[1] // 2
        flipped = torch.cat([flipped[:, :n].flip(1), flipped[:, n:].flip(1)], 1)
    m = mirror.bool().view(-1, *([1] * (points.dim() - 1)))
    return torch.where(m, flipped, points)


def bump(x: torch.Tensor) -> torch.Tensor:
    """Smooth compact bump ``(1 - (x/1.6)²)²₊`` ≈ ``exp(-x²)`` (within 0.05), but three cheap
    fused ops instead of a transcendental: the renderers evaluate many of these."""
    y = torch.addcmul(torch.ones((), dtype=x.dtype), x, x, value=-1 / 2.56).clamp_min_(0.0)
    return y.mul_(y)


def tail(x: torch.Tensor) -> torch.Tensor:
    """One-sided falloff ``(1 + x/2.5)²`` for x ≤ 0 (1 for x ≥ 0): a cheap ``exp(x)``."""
    y = (1.0 + x.clamp(max=0.0) * (1 / 2.5)).clamp_min(0.0)
    return y * y


def eye_boxes(geom: dict, top_margin: torch.Tensor, cx, cy, ppu, eyelid_px: torch.Tensor,
              size: tuple[int, int], lids: bool = True):
    """Pixel boxes ``(y0, y1, x0, x1)`` (half-open, clipped to the frame) that bound, over a batch:

    * the *lid box*: everything the eye changes — lids, crease, lashes (``top_margin`` eye
      units above the upper lid), the fold under the lower lid;
    * the *eye box* (inside it): the visible eyeball between the lids (the eyeball's silhouette
      when lids are off), one pixel of soft edge included.
    Renderers evaluate each layer only inside its box.
    """
    H, W = size
    lat, med = geom["lateral_extent"], geom["medial_extent"]
    lid_top, lid_bottom = eyelid_px[..., 1].min(1).values, eyelid_px[..., 1].max(1).values
    ex0, ex1 = (cx - ppu * lat).min() - 2, (cx + ppu * med).max() + 2
    ey0, ey1 = lid_top.min() - 2, lid_bottom.max() + 2
    lx0, lx1 = (cx - ppu * (lat + 0.3)).min(), (cx + ppu * (med + 0.3)).max()
    ly0, ly1 = (lid_top - ppu * top_margin).min(), (lid_bottom + ppu * 0.35).max()
    if not lids:
        ey0, ey1 = (cy - ppu).min() - 2, (cy + ppu).max() + 2
        ex0, ex1 = torch.minimum(ex0, (cx - ppu).min() - 2), torch.maximum(ex1, (cx + ppu).max() + 2)
        ly0, ly1 = torch.minimum(ly0, ey0), torch.maximum(ly1, ey1)
        lx0, lx1 = torch.minimum(lx0, ex0), torch.maximum(lx1, ex1)
    clip = lambda val, hi: int(min(max(val, 0), hi))
    lid_box = (clip(math.floor(ly0.item()), H), clip(math.ceil(ly1.item()) + 1, H),
               clip(math.floor(lx0.item()), W), clip(math.ceil(lx1.item()) + 1, W))
    eye_box = (clip(math.floor(ey0.item()), H), clip(math.ceil(ey1.item()) + 1, H),
               clip(math.floor(ex0.item()), W), clip(math.ceil(ex1.item()) + 1, W))
    eye_box = (max(eye_box[0], lid_box[0]), min(eye_box[1], lid_box[1]),
               max(eye_box[2], lid_box[2]), min(eye_box[3], lid_box[3]))
    return lid_box, eye_box


def alpha_window(alpha: torch.Tensor):
    """(row slice, column slice) of the box that holds every pixel with ``alpha`` > 0 in a batch
    (B, h, w), or None when there is none. A layer blended in with ``alpha`` changes nothing
    outside it (``torch.lerp`` with weight 0 returns its start exactly), so renderers evaluate the
    layer inside this box only."""
    on = alpha > 0
    rows = torch.nonzero(on.any(2).any(0))
    if rows.numel() == 0:
        return None
    cols = torch.nonzero(on.any(1).any(0))
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def eye_fields(u: torch.Tensor, v: torch.Tensor, geom: dict, state: dict, px_per_unit: torch.Tensor,
               lids: bool = True, edge_px: float = 1.0, eye_box: tuple | None = None) -> dict:
    """Per-pixel geometry on a grid, in the canonical layout.

    ``u``: (B, 1, W) and ``v``: (B, H, 1) eye-unit coordinates of pixel centres (no roll, so
    the lids are functions of the column only and are evaluated once per column).
    ``px_per_unit``: (B,) pixels per eye unit; soft edges are ``edge_px`` pixels wide (the hard
    mask is the 0.5 level of the soft alphas, so mask edges sit exactly on image edges).
    ``eye_box``: optional ``(y0, y1, x0, x1)`` indices into the grid outside which no eyeball is
    visible; the eyeball fields are then computed inside it only (the lid fields everywhere).

    Returns (B, H, W) ``above_upper``/``below_lower`` (eye-unit distances outside the lids, > 0
    outside), per-column (B, 1, W) ``t`` (0 temporal corner → 1 nasal), ``v_upper``, ``v_lower``,
    and on the eye box: ``fissure`` (soft opening between the lids), ``sphere_z`` (depth of the
    eyeball's front surface, 0 outside its silhouette), ``rho`` (radius on the iris plane / iris
    radius), ``ia``/``ib`` (iris-plane coordinates / iris radius), ``iris``/``pupil`` (soft
    alphas), ``caruncle`` (soft), ``mask`` (uint8 classes); ``eye_box`` echoes the box used.
    """
    ppu = px_per_unit[:, None, None]
    sharp = ppu / edge_px                                          # soft-edge slope, per eye unit
    lat, med = geom["lateral_extent"][:, None, None], geom["medial_extent"][:, None, None]
    t = (u + lat) / (lat + med)                                    # (B,1,W)
    out = {"t": t}
    if lids:
        up, lo = lid_curves(geom, state, t[:, 0, :])
        up, lo = up[:, None, :], lo[:, None, :]
        # Distances normal to the lid curves ≈ vertical distance × cos(slope).
        du_dcol = torch.gradient(u, dim=2)[0] + 1e-9 if u.shape[2] > 1 else torch.ones_like(u)
        slope_u = torch.gradient(up, dim=2)[0] / du_dcol if u.shape[2] > 1 else torch.zeros_like(u)
        slope_l = torch.gradient(lo, dim=2)[0] / du_dcol if u.shape[2] > 1 else torch.zeros_like(u)
        cos_u, cos_l = torch.rsqrt(1 + slope_u * slope_u), torch.rsqrt(1 + slope_l * slope_l)
        above = (up - v) * cos_u      # > 0 above the upper margin (outside)
        below = (v - lo) * cos_l      # > 0 below the lower margin (outside)
    else:
        up, lo = torch.full_like(u, -1.0), torch.full_like(u, 1.0)
        above, below = (-1.0 - v).expand(-1, -1, u.shape[2]), (v - 1.0).expand(-1, -1, u.shape[2])
    out.update(v_upper=up, v_lower=lo, above_upper=above, below_lower=below)

    y0, y1, x0, x1 = eye_box if eye_box is not None else (0, v.shape[1], 0, u.shape[2])
    out["eye_box"] = (y0, y1, x0, x1)
    u, v, t = u[:, :, x0:x1], v[:, y0:y1], t[:, :, x0:x1]
    above, below = above[:, y0:y1, x0:x1], below[:, y0:y1, x0:x1]

    # Eyeball front surface (orthographic): z = -sqrt(1 - u² - v²) inside the silhouette.
    pitch, yaw = canonical_gaze(state)
    g, e1, e2 = gaze_axes(pitch, yaw)
    r_iris = geom["iris_radius"][:, None, None]
    r2 = u * u + v * v
    z = -torch.sqrt((1.0 - r2).clamp_min(0.0))
    out["sphere_z"] = -z
    # Iris-plane coordinates of the surface point, in iris radii; rho = sin(angle to g) / r_iris.
    def comp(e, scale):
        e = e * scale
        return (u * e[:, 0, None, None] + v * e[:, 1, None, None]) + z * e[:, 2, None, None]
    ia, ib, ic = comp(e1, 1 / r_iris[:, 0]), comp(e2, 1 / r_iris[:, 0]), comp(g, 1.0)
    rho = torch.sqrt(ia * ia + ib * ib)
    front = (ic > 0) & (r2 < 1.0)                                  # the cornea's hemisphere
    rho = rho.masked_fill(~front, 10.0)
    out.update(ia=ia, ib=ib, rho=rho)
    # Soft edges: pixels per unit of rho along the most foreshortened direction.
    edge = (r_iris * sharp) * g[:, 2].abs()[:, None, None].clamp_min(0.25)
    p_ratio = pupil_ratio(geom, state)[:, None, None]
    out["iris"] = (0.5 + (1.0 - rho) * edge).clamp(0.0, 1.0)
    out["pupil"] = (0.5 + (p_ratio - rho) * edge).clamp(0.0, 1.0)

    if lids:
        corner = (0.5 + torch.minimum(t, 1.0 - t) * (lat + med) * sharp).clamp(0.0, 1.0)
        fissure = (0.5 - above * sharp).clamp(0.0, 1.0) * (0.5 - below * sharp).clamp(0.0, 1.0) * corner
        inside = (above < 0) & (below < 0) & (t > 0) & (t < 1)
    else:
        fissure = (0.5 + (1.0 - torch.sqrt(r2)) * sharp).clamp(0.0, 1.0)
        inside = r2 < 1.0

    # Lacrimal caruncle: pink tissue filling the nasal corner; not eyeball, so class 0.
    size = geom["caruncle_size"][:, None, None]
    cu = med - 1.1 * size
    cv = (geom["corner_level"] + 0.5 * geom["canthal_tilt"])[:, None, None]
    # Organic outline: a teardrop pointing temporally (longer, thinner towards the eyeball),
    # flatter on top, with a lumpy rim.
    du, dv = (u - cu) / size, (v - cv) / size
    rx = torch.where(du < 0, torch.full_like(du, 1.95), torch.full_like(du, 1.35))
    ry = 0.95 - 0.22 * (-du * (1 / 1.95)).clamp(0.0, 1.0) - 0.08 * (dv < 0).float()
    phase = geom["caruncle_phase"][:, None, None] if "caruncle_phase" in geom else torch.zeros_like(size)
    q = (du / rx) ** 2 + (dv / ry) ** 2
    q = q * (1.0 + 0.09 * torch.sin(2.1 * du + 2.9 * dv + phase) + 0.05 * torch.sin(4.3 * dv - 1.7 * du + 2 * phase))
    out["caruncle_q"] = q
    car_edge = (ppu * size * 0.3).clamp_min(0.5)
    caruncle = (0.5 + (1.0 - q) * car_edge).clamp(0.0, 1.0)
    if not lids:
        caruncle = torch.zeros_like(caruncle)
    out["caruncle"] = caruncle
    out["fissure"] = fissure
    visible = inside & (q >= 1.0) if lids else inside
    cls = 1 + (rho < 1.0).to(torch.uint8) + (rho < p_ratio).to(torch.uint8)
    out["mask"] = cls.masked_fill_(~visible, 0)
    return out


# ----------------------------------------------------------------------------------------------
# Identity textures: generated once per person from a seeded Generator and cached by callers.
# ----------------------------------------------------------------------------------------------

def fractal_noise(rng: np.random.Generator, shape: tuple[int, int], octaves) -> np.ndarray:
    """Sum of smooth noise octaves. ``octaves``: (cells_per_height, amplitude) pairs; each octave
    is white noise on a coarse grid upsampled bicubically (cells finer than the target are
    skipped: sub-pixel detail would only alias)."""
    H, W = shape
    out = torch.zeros(1, 1, H, W)
    for cells, amp in octaves:
        if cells > H:
            continue
        gh = max(2, int(round(cells)))
        gw = max(2, int(round(cells * W / H)))
        grid = torch.from_numpy(rng.standard_normal((1, 1, gh + 3, gw + 3)).astype(np.float32))
        up = torch.nn.functional.interpolate(grid, size=(H + 3 * H // gh + 3, W + 3 * W // gw + 3),
                                             mode="bicubic", align_corners=False)
        oy, ox = (up.shape[2] - H) // 2, (up.shape[3] - W) // 2
        out += amp * up[:, :, oy:oy + H, ox:ox + W]
    return out[0, 0].numpy()


def polar_noise_texture(rng, n_r: int, n_phi: int, r_smooth: float, phi_smooth: float) -> np.ndarray:
    """Noise on a (radius, angle) grid, periodic in angle: Gaussian-filtered white noise with
    ``r_smooth`` / ``phi_smooth`` correlation lengths in texels (FFT filter, wrap in angle)."""
    white = rng.standard_normal((n_r * 2, n_phi))
    fr = np.fft.fftfreq(n_r * 2)[:, None]
    fp = np.fft.fftfreq(n_phi)[None, :]
    filt = np.exp(-2 * (np.pi * fr * r_smooth) ** 2 - 2 * (np.pi * fp * phi_smooth) ** 2)
    out = np.real(np.fft.ifft2(np.fft.fft2(white) * filt))[:n_r]
    return (out - out.mean()) / (out.std() + 1e-8)


def iris_structure_texture(rng: np.random.Generator, size: int = 192) -> np.ndarray:
    """A person's iris relief, zero-mean, about unit spread, on a square covering the iris disk.

    The texture is laid out on a disk of radius 1 whose radius r_T maps to the normalised iris
    radius s = (r_T - 0.25) / 0.75 (0 at the pupil edge, 1 at the limbus): renderers scale the
    sampling radius with the pupil so the stroma compresses when the pupil dilates.
    Contents: radial fibres, a wavy collarette ridge, dark crypts, circumferential furrows.
    """
    from scipy.ndimage import map_coordinates

    n_r, n_phi = 96, 720
    fibres = polar_noise_texture(rng, n_r, n_phi, r_smooth=rng.uniform(6, 14), phi_smooth=rng.uniform(1.0, 2.0))
    blotch = polar_noise_texture(rng, n_r, n_phi, r_smooth=8.0, phi_smooth=18.0)
    s = np.linspace(0, 1, n_r)[:, None]
    phi = np.linspace(0, 2 * np.pi, n_phi, endpoint=False)[None, :]
    wave = polar_noise_texture(rng, 2, n_phi, 1.0, 25.0)[0:1]
    collar_s = rng.uniform(0.25, 0.4) + 0.05 * wave
    collarette = np.exp(-((s - collar_s) / 0.04) ** 2)
    crypts = np.zeros((n_r, n_phi))
    for _ in range(int(rng.integers(6, 20))):        # dark lens-shaped pits in the ciliary zone
        cs, cp = rng.uniform(0.35, 0.85), rng.uniform(0, 2 * np.pi)
        ws, wp = rng.uniform(0.04, 0.1), rng.uniform(0.05, 0.16)
        dphi = np.angle(np.exp(1j * (phi - cp)))
        crypts += np.exp(-((s - cs) / ws) ** 2 - (dphi / wp) ** 2)
    furrows = np.zeros((n_r, n_phi))
    for _ in range(int(rng.integers(1, 4))):         # partial circumferential contraction furrows
        fs, cp, span = rng.uniform(0.6, 0.9), rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 2.5)
        dphi = np.angle(np.exp(1j * (phi - cp)))
        furrows += np.exp(-((s - fs) / 0.012) ** 2) * (np.abs(dphi) < span)
    # Pupillary zone (inside the collarette) is smoother and a touch darker than the ciliary zone.
    inner = s < collar_s
    polar = (np.where(inner, 0.6, 1.0) * fibres + 0.5 * blotch + 1.2 * collarette
             - 1.6 * np.minimum(crypts, 1.0) - 1.0 * furrows - 0.4 * inner)
    polar = (polar - polar.mean()) / (polar.std() + 1e-8)
    # Resample to the Cartesian disk layout (angle wraps).
    yy, xx = np.mgrid[0:size, 0:size]
    X, Y = (xx + 0.5) / size * 2 - 1, (yy + 0.5) / size * 2 - 1
    rT = np.sqrt(X * X + Y * Y)
    s_of = np.clip((rT - 0.25) / 0.75, 0, 1) * (n_r - 1)
    p_of = (np.arctan2(Y, X) % (2 * np.pi)) / (2 * np.pi) * n_phi
    cart = map_coordinates(np.vstack([polar, polar[:1]]), [s_of, p_of], order=1, mode="grid-wrap")
    return cart.astype(np.float32)


LASH_T_RANGE = (-0.1, 1.1)   # lash texture columns: fissure position t
# Lash/lid texture rows: eye units away from the lid margin. The range reaches a little onto the
# eyeball (lashes that droop over the iris, the lashes' shadow) and far enough out to hold the
# baked crease/hollow shading of the lid (see render_nir.lid_shade_maps).
LASH_D_RANGE = (-0.155, 0.9)
LASH_N_T, LASH_N_D = 1024, 400  # texels; isotropic: 1024 / (1.2 * 2.25) ≈ 400 / 1.055 texels per eye unit
LASH_UNITS_PER_T = 2.25      # ≈ eye units per unit t (keeps the texture about isotropic)


def lash_texture(rng: np.random.Generator, density: float, length: float, lower: bool = False,
                 n_t: int = LASH_N_T, n_d: int = LASH_N_D) -> np.ndarray:
    """Eyelash coverage (0..1) in lid coordinates: columns t ∈ :data:`LASH_T_RANGE` along the
    fissure (0 temporal corner, 1 nasal), rows d ∈ :data:`LASH_D_RANGE` eye units away from the
    lid margin (row 0 at the margin side).

    Each lash is a tapering arc from its root on the margin: it leaves the lid fanning outwards
    (towards the temporal corner near it, a little nasally near the nasal corner) and curls
    further as it grows; lashes are longest mid-lid. The lower lid has fewer, shorter, finer ones.
    About half the people also have a few upper lashes that droop over the eyeball (seen from the
    headset camera below the eye, they cross the top of the iris and sclera).
    Drawn with PIL on a 2× canvas and box-filtered down (anti-aliased coverage).
    """
    from PIL import Image, ImageDraw

    ss = 2
    canvas = Image.new("L", (n_t * ss, n_d * ss), 0)
    draw = ImageDraw.Draw(canvas)
    t_lo, t_hi = LASH_T_RANGE
    d_lo, d_hi = LASH_D_RANGE
    px_per_unit = n_t * ss / ((t_hi - t_lo) * LASH_UNITS_PER_T)
    n = int((55 if lower else 140) * density)
    for _ in range(n):
        t0 = rng.uniform(0.08, 0.92) if lower else 0.02 + 0.96 * rng.beta(1.4, 1.2)
        middle = np.sin(np.pi * t0)
        L = length * (0.3 + 0.7 * middle ** 0.7) * rng.uniform(0.5, 1.05) * (0.4 if lower else 1.0)
        theta0 = (t0 - 0.6) * 1.3 + rng.normal(0, 0.18)           # angle from the lid normal
        curl = np.sign(theta0 + 1e-3) * rng.uniform(0.2, 1.0)       # extra bend over the length
        width = rng.uniform(0.006, 0.012) * (0.7 if lower else 1.0)
        dark = rng.uniform(0.65, 1.0)
        steps = np.linspace(0.0, 1.0, 13)
        theta = theta0 + curl * steps
        ds = L / (len(steps) - 1)
        x = np.concatenate([[0.0], np.cumsum(np.sin(theta[:-1]) * ds)])
        d = np.concatenate([[0.0], np.cumsum(np.cos(theta[:-1]) * ds)])
        cols = ((t0 - t_lo) * LASH_UNITS_PER_T + x) * px_per_unit
        rows = (d - d_lo) * px_per_unit
        for k in range(len(steps) - 1):
            w_px = max(1, int(round(width * px_per_unit * (1.0 - 0.8 * steps[k]))))
            draw.line([(cols[k], rows[k]), (cols[k + 1], rows[k + 1])], fill=int(255 * dark), width=w_px)
    if not lower and rng.random() < 0.55:       # drooping lashes: short arcs below the margin
        for _ in range(int(rng.integers(4, 26) * density)):
            t0 = rng.uniform(0.2, 0.85)
            L = length * rng.uniform(0.15, 0.45)
            theta0 = np.pi - rng.normal(0, 0.35) + 0.6 * (t0 - 0.55)
            curl = rng.normal(0, 0.6)
            width = rng.uniform(0.005, 0.009)
            dark = rng.uniform(0.45, 0.9)
            steps = np.linspace(0.0, 1.0, 9)
            theta = theta0 + curl * steps
            ds = L / (len(steps) - 1)
            x = np.concatenate([[0.0], np.cumsum(np.sin(theta[:-1]) * ds)])
            d = np.concatenate([[0.0], np.cumsum(np.cos(theta[:-1]) * ds)])
            d = np.maximum(d, d_lo + 0.07)   # stay clear of the texture's zero border
            cols = ((t0 - t_lo) * LASH_UNITS_PER_T + x) * px_per_unit
            rows = (d - d_lo) * px_per_unit
            for k in range(len(steps) - 1):
                w_px = max(1, int(round(width * px_per_unit * (1.0 - 0.7 * steps[k]))))
                draw.line([(cols[k], rows[k]), (cols[k + 1], rows[k + 1])], fill=int(255 * dark), width=w_px)
    small = np.asarray(canvas.resize((n_t, n_d), Image.BOX), dtype=np.float32) / 255.0
    small[:, :3] = 0.0     # renderers sample with border padding: keep the edges empty
    small[:, -3:] = 0.0
    small[:3] = 0.0
    small[-3:] = 0.0
    return small


STACKED_TEXTURE_BYTES = 8 << 20


def mip_level_of(texels_per_px, n_levels: int) -> np.ndarray:
    """The mip level whose texels are about one output pixel: ⌊log₂ texels per pixel⌋, within the
    pyramid's ``n_levels``; ``texels_per_px`` a number or one per image."""
    tpp = np.atleast_1d(np.asarray(torch.as_tensor(texels_per_px, dtype=torch.float64).cpu()))
    return np.clip(np.floor(np.log2(np.maximum(tpp, 1e-6))), 0, n_levels - 1).astype(int)


def sample_texture(levels_per_item: list[list[torch.Tensor]], grid: torch.Tensor, texels_per_px,
                   padding_mode: str = "zeros") -> torch.Tensor:
    """Bilinear lookup of per-image textures at ``grid`` (B, H, W, 2) in [-1, 1] (x then y),
    choosing per image the mip level whose texels are about one output pixel (no aliasing when
    minified). ``texels_per_px``: a number, or (B,) per image — so an image's pixels never depend
    on which other images share its batch. ``levels_per_item``: for each image, its texture's mip
    levels (C, h, w).

    Images sharing a texture (the same person) are sampled in one call with their grids stacked,
    so textures are not copied per image when a batch holds few people.
    """
    n_items = len(levels_per_item)
    level_of = np.broadcast_to(mip_level_of(texels_per_px, len(levels_per_item[0])), (n_items,))
    levels = sorted(set(level_of.tolist()))
    if len(levels) == 1:
        return _sample_at_level(levels_per_item, grid, levels[0], padding_mode)
    out = None
    for level in levels:
        idx = [i for i in range(n_items) if level_of[i] == level]
        sel = torch.tensor(idx)
        res = _sample_at_level([levels_per_item[i] for i in idx], grid.index_select(0, sel), level, padding_mode)
        if out is None:
            out = torch.empty(n_items, *res.shape[1:], dtype=res.dtype)
        out.index_copy_(0, sel, res)
    return out


def _sample_at_level(levels_per_item, grid: torch.Tensor, level: int, padding_mode: str) -> torch.Tensor:
    groups: dict[int, tuple[torch.Tensor, list[int]]] = {}
    for i, lv in enumerate(levels_per_item):
        tex = lv[min(level, len(lv) - 1)]
        groups.setdefault(id(tex), (tex, []))[1].append(i)
    B = grid.shape[0]
    # One call on per-image copies of the textures, unless copying them would cost more than
    # sampling each person's texture separately (big textures shared by several images). Then a
    # texture is expanded over its images' batch (a view, no copy), so torch's kernel splits them
    # over its threads (one image of their stacked rows, as before, ran on one).
    sample = lambda tex, g: torch.nn.functional.grid_sample(tex[None].expand(g.shape[0], -1, -1, -1), g, mode="bilinear",
                                                            padding_mode=padding_mode, align_corners=False)
    first = next(iter(groups.values()))[0]
    if 2 * len(groups) > B or first.nbytes * B <= STACKED_TEXTURE_BYTES:
        tex = torch.stack([lv[min(level, len(lv) - 1)] for lv in levels_per_item])
        return torch.nn.functional.grid_sample(tex, grid, mode="bilinear", padding_mode=padding_mode,
                                               align_corners=False)
    if len(groups) == 1:
        return sample(first, grid)
    out = torch.empty(B, first.shape[0], *grid.shape[1:3])
    for tex, idx in groups.values():
        sel = torch.tensor(idx)
        out.index_copy_(0, sel, sample(tex, grid.index_select(0, sel)))
    return out


def noise_of_chunk(noise, sl: slice) -> torch.Tensor | None:
    """The sensor noise of the images in ``sl``: ``noise`` is None, a (B, …) tensor, or a list of B
    per-image tensors (crops of a noise bank, stacked here one chunk at a time)."""
    if noise is None:
        return None
    return noise[sl] if isinstance(noise, torch.Tensor) else torch.stack(noise[sl])


def render_in_chunks(render_slice, image: torch.Tensor, mask: torch.Tensor, chunk: int, *, quantize: bool,
                     landmarks: torch.Tensor, eyelid: torch.Tensor, mirror: torch.Tensor, return_layers: bool) -> dict:
    """Fill ``image``/``mask`` (B, …) chunk by chunk — ``render_slice(sl)`` returns (image, mask,
    layers) of the images in ``sl``, in the canonical layout — so memory stays bounded, then mirror
    left eyes' images, masks and labels and assemble the renderers' common output dict."""
    width = image.shape[-1]
    layers = []
    for a in range(0, image.shape[0], chunk):
        sl = slice(a, min(a + chunk, image.shape[0]))
        img, msk, lay = render_slice(sl)
        image[sl] = img.clamp_(0, 255).round_() if quantize else img
        mask[sl] = msk
        if return_layers:
            layers.append(lay)
    # Left eyes are drawn in the canonical (right-eye) layout and mirrored here, once per batch:
    # on the quantised image that moves a quarter of the bytes it would as floats.
    flip = mirror.bool()
    if flip.any():
        image[flip] = image[flip].flip(-1)
        mask[flip] = mask[flip].flip(-1)
    out = {"image": image, "mask": mask,
           "landmarks": mirror_points(landmarks, mirror, width, True),
           "eyelid": mirror_points(eyelid, mirror, width, False)}
    if return_layers:
        out["layers"] = layers
    return out
