"""The 3-D eye shared by the NIR and RGB renderers: geometry, identity and per-image state.

Units and frames
----------------
*Eye units*: lengths are in eyeball radii (1 eye unit ≈ 12 mm). The camera frame is the one of
:mod:`eyegen_lib.gaze`: ``u`` to the image right, ``v`` down (towards larger rows), ``z`` away
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

from eyegen_lib.gaze import pitchyaw_to_vector

__all__ = [
    "GEOMETRY_RANGES", "STATE_KEYS", "LANDMARK_NAMES", "N_EYELID_POINTS",
    "rng_for", "sample_geometry", "stack_params", "canonical_gaze", "gaze_axes", "pupil_ratio",
    "lid_curves", "eye_landmarks", "eye_fields", "mirror_points", "polar_noise_texture",
    "fractal_noise", "iris_structure_texture", "lash_texture", "mip_levels", "sample_texture",
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
    "lower_follow": (0.20, 0.35),       # the lower lid follows far less
    "openness": (0.88, 1.04),           # this person's typical opening
    "crease_height": (0.30, 0.55),      # lid crease above the upper lid margin
    "crease_strength": (0.15, 0.60),
    "lash_density": (0.55, 1.00),
    "lash_length": (0.24, 0.42),
    "caruncle_size": (0.07, 0.12),
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
    keys = keys if keys is not None else rows[0].keys()
    return {k: torch.tensor([float(r[k]) for r in rows], dtype=torch.float32) for k in keys}


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


def eye_fields(u: torch.Tensor, v: torch.Tensor, geom: dict, state: dict, px_per_unit: torch.Tensor,
               lids: bool = True) -> dict:
    """Per-pixel geometry on a grid, in the canonical layout.

    ``u``: (B, 1, W) and ``v``: (B, H, 1) eye-unit coordinates of pixel centres (no roll, so
    the lids are functions of the column only and are evaluated once per column).
    ``px_per_unit``: (B,) pixels per eye unit (soft edges are one pixel wide).

    Returns a dict of (B, H, W) tensors — ``fissure`` (soft 0..1 opening between the lids),
    ``sphere_z`` (depth of the eyeball's front surface, 0 outside its silhouette), ``rho``
    (radius on the iris plane / iris radius), ``ia``/``ib`` (iris-plane coordinates / iris
    radius), ``iris``/``pupil`` (soft alphas), ``above_upper``/``below_lower`` (eye-unit
    distances outside the lids), ``caruncle`` (soft), ``mask`` (uint8 classes) — and per-column
    (B, 1, W) ``t``, ``v_upper``, ``v_lower``.
    """
    ppu = px_per_unit[:, None, None]
    lat, med = geom["lateral_extent"][:, None, None], geom["medial_extent"][:, None, None]
    t = (u + lat) / (lat + med)                                    # (B,1,W)
    out = {"t": t}
    pitch, yaw = canonical_gaze(state)
    g, e1, e2 = gaze_axes(pitch, yaw)
    r_iris = geom["iris_radius"][:, None, None]

    # Eyeball front surface (orthographic): z = -sqrt(1 - u² - v²) inside the silhouette.
    r2 = u * u + v * v
    z = -torch.sqrt((1.0 - r2).clamp_min(0.0))
    out["sphere_z"] = -z
    # Iris-plane coordinates of the surface point, in iris radii; rho = sin(angle to g) / r_iris.
    def comp(e):
        return (u * e[:, 0, None, None] + v * e[:, 1, None, None]) + z * e[:, 2, None, None]
    ia, ib, ic = comp(e1) / r_iris, comp(e2) / r_iris, comp(g)
    rho = torch.sqrt(ia * ia + ib * ib)
    front = (ic > 0) & (r2 < 1.0)                                  # the cornea's hemisphere
    rho = torch.where(front, rho, torch.full_like(rho, 10.0))
    out.update(ia=ia, ib=ib, rho=rho)
    # Soft edges: pixels per unit of rho along the most foreshortened direction.
    edge = (r_iris * ppu) * g[:, 2].abs()[:, None, None].clamp_min(0.25)
    p_ratio = pupil_ratio(geom, state)[:, None, None]
    out["iris"] = (0.5 + (1.0 - rho) * edge).clamp(0.0, 1.0)
    out["pupil"] = (0.5 + (p_ratio - rho) * edge).clamp(0.0, 1.0)

    if lids:
        up, lo = lid_curves(geom, state, t[:, 0, :])
        up, lo = up[:, None, :], lo[:, None, :]
        # Distances normal to the lid curves ≈ vertical distance × cos(slope).
        du_dcol = torch.gradient(u, dim=2)[0] + 1e-9
        slope_u = torch.gradient(up, dim=2)[0] / du_dcol
        slope_l = torch.gradient(lo, dim=2)[0] / du_dcol
        cos_u, cos_l = torch.rsqrt(1 + slope_u * slope_u), torch.rsqrt(1 + slope_l * slope_l)
        corner = (0.5 + torch.minimum(t, 1.0 - t) * (lat + med) * ppu).clamp(0.0, 1.0)
        d_up = (v - up) * cos_u       # > 0 below the upper margin (inside)
        d_lo = (lo - v) * cos_l       # > 0 above the lower margin (inside)
        fissure = (0.5 + d_up * ppu).clamp(0.0, 1.0) * (0.5 + d_lo * ppu).clamp(0.0, 1.0) * corner
        inside = (d_up > 0) & (d_lo > 0) & (t > 0) & (t < 1)
        out.update(v_upper=up, v_lower=lo, above_upper=-d_up, below_lower=-d_lo)
    else:
        fissure = (0.5 + (1.0 - torch.sqrt(r2)) * ppu).clamp(0.0, 1.0)
        inside = r2 < 1.0
        out.update(v_upper=torch.full_like(u, -1.0), v_lower=torch.full_like(u, 1.0),
                   above_upper=-(v + 1.0).expand_as(r2), below_lower=(v - 1.0).expand_as(r2))

    # Lacrimal caruncle: pink tissue filling the nasal corner; not eyeball, so class 0.
    size = geom["caruncle_size"][:, None, None]
    cu = med - 0.9 * size
    cv = (geom["corner_level"] + 0.5 * geom["canthal_tilt"])[:, None, None]
    q = ((u - cu) / (1.3 * size)) ** 2 + ((v - cv) / size) ** 2
    car_edge = ppu * size * 0.5
    caruncle = (0.5 + (1.0 - q) * car_edge).clamp(0.0, 1.0)
    out["caruncle"] = caruncle * fissure
    out["fissure"] = fissure
    out["eyeball"] = fissure * (1.0 - caruncle)                    # soft visible-eyeball alpha
    visible = inside & (q >= 1.0)
    cls = 1 + (rho < 1.0).to(torch.uint8) + (rho < p_ratio).to(torch.uint8)
    out["mask"] = torch.where(visible, cls, torch.zeros_like(cls))
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


def lash_texture(rng: np.random.Generator, density: float, length: float, lower: bool = False,
                 n_t: int = 1024, n_d: int = 160, d_max: float = 0.6) -> np.ndarray:
    """Eyelash coverage (0..1) in lid coordinates: columns t ∈ [-0.1, 1.1] along the fissure
    (0 temporal corner, 1 nasal), rows d ∈ [-0.04, d_max] eye units away from the lid margin.

    Each lash is a tapering curved stroke from its root on the margin; lashes point outwards
    (towards the temporal corner more than the nasal one), longest in the middle of the lid.
    The lower lid has fewer, shorter, finer lashes.
    """
    tex = np.zeros((n_d, n_t), np.float32)
    d0 = -0.04
    n = int((60 if lower else 150) * density)
    fissure_w = 2.25  # ≈ eye units per unit t (used to keep strokes round, not stretched)
    for _ in range(n):
        t0 = rng.uniform(0.1, 0.95) if lower else rng.beta(1.3, 1.1)
        middle = np.sin(np.pi * np.clip(t0, 0, 1))
        L = length * (0.45 + 0.55 * middle) * rng.uniform(0.6, 1.15) * (0.45 if lower else 1.0)
        slant = (t0 - 0.62) * 1.4 + rng.normal(0, 0.12)      # outward tilt (eye units per unit d)
        curl = rng.uniform(0.4, 1.6) * np.sign(slant) if abs(slant) > 0.1 else rng.normal(0, 0.3)
        width = rng.uniform(0.006, 0.011) * (0.7 if lower else 1.0)
        steps = np.linspace(0, 1, 48)
        dd = steps * L
        tt = t0 + (slant * dd + curl * dd * dd) / fissure_w
        rows = (dd - d0) / (d_max - d0) * (n_d - 1)
        cols = (tt + 0.1) / 1.2 * (n_t - 1)
        rad_r = width / (d_max - d0) * (n_d - 1)
        rad_c = width / fissure_w / 1.2 * (n_t - 1)
        taper = 1.0 - 0.75 * steps
        for rr, cc, tp in zip(rows, cols, taper):
            r0, r1 = int(max(rr - 3 * rad_r - 1, 0)), int(min(rr + 3 * rad_r + 2, n_d))
            c0, c1 = int(max(cc - 3 * rad_c - 1, 0)), int(min(cc + 3 * rad_c + 2, n_t))
            if r0 >= r1 or c0 >= c1:
                continue
            yy, xx = np.mgrid[r0:r1, c0:c1]
            dist2 = ((yy - rr) / (rad_r * tp)) ** 2 + ((xx - cc) / (rad_c * tp)) ** 2
            tex[r0:r1, c0:c1] = np.maximum(tex[r0:r1, c0:c1], np.exp(-0.5 * dist2) * (0.75 + 0.25 * tp))
    return np.clip(tex * 1.1, 0, 1)


def mip_levels(tex: torch.Tensor, n: int = 5) -> list[torch.Tensor]:
    """(C, H, W) texture → list of 2×2-average-pooled versions (level 0 = full resolution)."""
    levels = [tex]
    for _ in range(n - 1):
        if min(levels[-1].shape[-2:]) < 8:
            break
        levels.append(torch.nn.functional.avg_pool2d(levels[-1][None], 2, ceil_mode=True)[0])
    return levels


def sample_texture(levels_per_item: list[list[torch.Tensor]], grid: torch.Tensor, texels_per_px: float,
                   padding_mode: str = "zeros") -> torch.Tensor:
    """Bilinear lookup of per-image textures at ``grid`` (B, H, W, 2) in [-1, 1] (x then y),
    choosing the mip level whose texels are about one output pixel (no aliasing when minified).
    ``levels_per_item``: for each image, its texture's mip levels (C, h, w)."""
    level = int(np.clip(np.floor(np.log2(max(texels_per_px, 1e-6))), 0, len(levels_per_item[0]) - 1))
    tex = torch.stack([lv[min(level, len(lv) - 1)] for lv in levels_per_item])
    return torch.nn.functional.grid_sample(tex, grid, mode="bilinear", padding_mode=padding_mode,
                                           align_corners=False)
