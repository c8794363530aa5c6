"""He et al.'s paper claims (§5.3, §5.5) and our account of them, judged from notebook 06's scores.

Each function takes the scores 06 computes — means over the redirection protocol keyed by method
("GAN", "GAN reference", "GAN no cycle", "unchanged input", "DeepWarp (CFW+LCM)" …) — and returns the
keyword arguments of :meth:`eyegen_lib.runs.record.Recorder.claim`: statement, what was measured, whether it
holds and by what margin (positive when it holds). The arithmetic lives here, tested; the notebook
records it. :func:`protocol_claims` gives every claim 06 records, in its order.
"""
from __future__ import annotations

from collections.abc import Mapping

__all__ = ["SKIN_TONE_R_FLOOR", "FLOOR_SUFFIX", "method_label", "per_bin_pairs", "beats_deepwarp", "no_gaze_loss_gaze_does_not_move",
           "term_raises_lpips", "lpips_below_unchanged_input", "gaze_error_below_unchanged_input", "keeps_skin_tone",
           "departures_keep_skin_tone", "keep_mask_lowers_repaint_floor", "identity_term_lowers_repaint_floor",
           "target_term_opens_the_mask", "mask_opens_where_the_eye_changes", "protocol_claims"]

SKIN_TONE_R_FLOOR = 0.9  # the bar for "keeps the person": source/output skin-tone Pearson r
FLOOR_SUFFIX = ": LPIPS to the input at the same gaze"  # how 06's repaint-floor table names each method's floor
UNCHANGED = "unchanged input"


def per_bin_pairs(table, metric: str, better: str, worse: str) -> tuple[dict[str, list[float]], bool, float]:
    """From a per-angle-bin table (``binned.pivot(index="angle_bin", columns="method")``): [better,
    worse] per bin, whether ``better`` is lower in every bin, and the margin (its smallest lead)."""
    pairs = {f"{b.left:g}-{b.right:g}°": [float(table[metric][better].loc[b]), float(table[metric][worse].loc[b])]
             for b in table.index}
    return pairs, all(a < b for a, b in pairs.values()), min(b - a for a, b in pairs.values())


def beats_deepwarp(per_bin, metric: str, *, deepwarp: str, steps: int, by_length: Mapping[int, object] | None = None,
                   gan: str = "GAN") -> dict:
    """He et al. §5.3: the GAN has a lower ``metric`` ("lpips" or "gaze_error_deg") than DeepWarp in
    every correction-angle bin. ``by_length``: the same table for the GAN's length snapshots."""
    label = {"lpips": "LPIPS", "gaze_error_deg": "gaze error"}[metric]
    measured, holds, margin = per_bin_pairs(per_bin, metric, gan, deepwarp)
    at = {}
    for step, table in (by_length or {}).items():
        m, h, g = per_bin_pairs(table, metric, gan, deepwarp)
        at[step] = {"holds": h, "margin": g, "measured": m}
    return dict(name=f"gan_beats_deepwarp_{metric}", paper="He et al. §5.3, Figs. 5, 7",
                statement=f"the GAN has lower {label} than DeepWarp in every correction-angle bin",
                measured=measured, holds=holds, margin=margin, by_length=at,
                note=f"[GAN, DeepWarp] per bin after {steps} iterations; margin: the GAN's smallest lead")


def _lengths(iterations: Mapping[str, int], *methods: str) -> str:
    """How long each compared model trained, in words: "both after 500 iterations", or each one's
    length where they differ (the zoo may hold one side trained longer)."""
    steps = [int(iterations[m]) for m in methods]
    if len(set(steps)) == 1:
        return f"{'both' if len(steps) == 2 else 'all'} after {steps[0]} iterations"
    return ", ".join(f"{m} after {n}" for m, n in zip(methods, steps)) + " iterations"


def no_gaze_loss_gaze_does_not_move(gaze_error: Mapping[str, float], *, reference: str,
                                    iterations: Mapping[str, int]) -> dict:
    """He et al. §5.5: without the gaze loss the gaze error stays nearer the unchanged input's than the
    full recipe's (``reference``: the full recipe at the ablation's length)."""
    no_gaze, full, still = (float(gaze_error[k]) for k in ("GAN no gaze", reference, UNCHANGED))
    return dict(name="no_gaze_loss_gaze_does_not_move", paper="He et al. §5.5, Fig. 7",
                statement="without the gaze loss the gaze hardly moves: its gaze error stays nearer the unchanged "
                          "input's than the full recipe's",
                measured={"GAN no gaze": no_gaze, reference: full, UNCHANGED: still},
                holds=abs(no_gaze - still) < abs(no_gaze - full), margin=abs(no_gaze - full) - abs(no_gaze - still),
                note=f"mean gaze error (°) over the protocol; {_lengths(iterations, 'GAN no gaze', reference)}")


def method_label(recipe: str) -> str:
    """The name a recipe goes by in 06's tables and claims: "GAN" (the full recipe), "GAN reference", "GAN no cycle" …"""
    return "GAN" if recipe == "full" else f"GAN {recipe.replace('_', ' ')}"


def term_raises_lpips(ablation: str, lpips: Mapping[str, float], *, reference: str,
                      iterations: Mapping[str, int]) -> dict:
    """He et al. §5.5: removing a loss term (``no_cycle``, ``no_perceptual``) raises LPIPS."""
    if not ablation.startswith("no_"):
        raise ValueError(f"{ablation!r} is not a removed loss term (no_cycle, no_perceptual)")
    method = method_label(ablation)
    without, with_ = float(lpips[method]), float(lpips[reference])
    return dict(name=f"{ablation}_raises_lpips", paper="He et al. §5.5, Fig. 5",
                statement=f"without the {ablation[3:]} loss, LPIPS rises",
                measured={method: without, reference: with_}, holds=without > with_, margin=without - with_,
                note=f"mean LPIPS over the protocol; {_lengths(iterations, method, reference)}")


def lpips_below_unchanged_input(lpips: Mapping[str, float], *, steps: int) -> dict:
    """He et al. §5.3: the GAN's output is closer to the target than its unchanged input is."""
    gan, still = float(lpips["GAN"]), float(lpips[UNCHANGED])
    return dict(name="gan_lpips_below_unchanged_input", paper="He et al. §5.3, Fig. 5",
                statement="the GAN's output is closer to the target (LPIPS) than the unchanged input is",
                measured={"GAN": gan, UNCHANGED: still}, holds=gan < still, margin=still - gan,
                note=f"mean LPIPS over the protocol after {steps} iterations")


def gaze_error_below_unchanged_input(gaze_error: Mapping[str, float], *, steps: int) -> dict:
    """He et al. §5.3: the GAN moves the gaze — its gaze error is below the unchanged input's."""
    gan, still = float(gaze_error["GAN"]), float(gaze_error[UNCHANGED])
    return dict(name="gan_gaze_error_below_unchanged_input", paper="He et al. §5.3, Fig. 7",
                statement="the GAN moves the gaze: its gaze error is below the unchanged input's",
                measured={"GAN": gan, UNCHANGED: still}, holds=gan < still, margin=still - gan,
                note=f"mean gaze error (°) of the independent estimator after {steps} iterations")


def keeps_skin_tone(skin_tone_r: Mapping[str, float], *, threshold: float = SKIN_TONE_R_FLOOR) -> dict:
    """He et al. §3.1: the GAN keeps each person's skin tone (source/output skin-tone r ≥ ``threshold``)."""
    r = float(skin_tone_r["GAN"])
    return dict(name="gan_keeps_skin_tone", paper="He et al. §3.1 (the cycle loss keeps skin tone)",
                statement=f"the GAN keeps each person's skin tone: source/output skin-tone r ≥ {threshold:g}",
                measured={"GAN": r, "threshold": threshold}, holds=r >= threshold, margin=r - threshold,
                note="Pearson r over the protocol's pairs (§5b)")


def departures_keep_skin_tone(skin_tone_r: Mapping[str, float], *, reference: str,
                              iterations: Mapping[str, int]) -> dict:
    """Ours: with the keep mask and the identity term, skin tone is kept better than under the authors' recipe."""
    authors, ours = float(skin_tone_r["GAN authors"]), float(skin_tone_r[reference])
    return dict(name="our_departures_keep_skin_tone", paper="ours (issue 27)",
                statement="with our two departures (keep mask, identity term) skin tone is kept better than under "
                          "the authors' recipe",
                measured={"GAN authors": authors, reference: ours}, holds=authors < ours, margin=ours - authors,
                note=f"source/output skin-tone r; {_lengths(iterations, 'GAN authors', reference)}")


def keep_mask_lowers_repaint_floor(repaint_floor: Mapping[str, float], *, iterations: Mapping[str, int]) -> dict:
    """Ours: without the identity term, the authors' generator (no mask) changes an eye redirected to
    its own gaze more than the generator with the mask. ``repaint_floor``: LPIPS to the input at the
    source's own gaze, by method."""
    authors, masked = float(repaint_floor["GAN authors"]), float(repaint_floor["GAN no identity"])
    return dict(name="keep_mask_lowers_repaint_floor", paper="ours (issue 27)",
                statement="the keep mask lowers the repaint floor: without the identity term, the authors' generator "
                          "changes an eye redirected to its own gaze more than the generator with the mask",
                measured={"GAN authors": authors, "GAN no identity": masked}, holds=authors > masked,
                margin=authors - masked,
                note=f"LPIPS to the input at the same gaze (§5b); {_lengths(iterations, 'GAN authors', 'GAN no identity')}")


def identity_term_lowers_repaint_floor(repaint_floor: Mapping[str, float], *, reference: str,
                                       iterations: Mapping[str, int]) -> dict:
    """Ours: without the identity term an eye redirected to its own gaze changes more."""
    without, with_ = float(repaint_floor["GAN no identity"]), float(repaint_floor[reference])
    return dict(name="identity_term_lowers_repaint_floor", paper="ours (issue 27)",
                statement="the identity term lowers the repaint floor: without it an eye redirected to its own gaze "
                          "changes more",
                measured={"GAN no identity": without, reference: with_}, holds=without > with_, margin=without - with_,
                note=f"LPIPS to the input at the same gaze (§5b); {_lengths(iterations, 'GAN no identity', reference)}")


def target_term_opens_the_mask(mask_story: Mapping[str, Mapping[str, float]], *, reference: str,
                               iterations: Mapping[str, int]) -> dict:
    """Ours: the target's L1 brings the output closer to the target. ``mask_story``: per method, its
    LPIPS, gaze error and painted share (06 §5c)."""
    nt, rf = dict(mask_story["GAN no target"]), dict(mask_story[reference])
    return dict(name="target_term_opens_the_mask", paper="ours (issue 27)",
                statement="the target's L1 brings the output closer to the target: without it, LPIPS is higher",
                measured={"GAN no target": nt, reference: rf}, holds=nt["LPIPS"] > rf["LPIPS"],
                margin=float(nt["LPIPS"] - rf["LPIPS"]),
                note=f"means over the protocol, with how much of the patch each mask paints (§5c); "
                     f"{_lengths(iterations, 'GAN no target', reference)}")


def mask_opens_where_the_eye_changes(gan: float, oracle: float, unchanged: float, *, steps: int) -> dict:
    """Ours, an account of :func:`lpips_below_unchanged_input`: the GAN's keep mask filled with the
    target's pixels where it paints (``oracle``) comes closer to the target than the unchanged input."""
    gan, oracle, unchanged = float(gan), float(oracle), float(unchanged)
    return dict(name="gan_mask_opens_where_the_eye_changes", paper="ours (an account of gan_lpips_below_unchanged_input)",
                statement="the GAN's keep mask opens where the eye changes: filled with the target's pixels where it "
                          "paints, it comes closer to the target (LPIPS) than the unchanged input does — what remains "
                          "of the GAN's distance is its painting",
                measured={"GAN": gan, "mask + target pixels": oracle, UNCHANGED: unchanged},
                holds=oracle < unchanged, margin=unchanged - oracle,
                note=f"mean LPIPS over the protocol after {steps} iterations (§5b)")


def protocol_claims(*, summary, skin_tone_r: Mapping[str, float], repaint_floor: Mapping[str, float],
                    per_bin, by_length: Mapping[int, object], painter: tuple[float, float, float],
                    mask_story: Mapping[str, Mapping[str, float]] | None, ablations, deepwarp: str,
                    iterations: Mapping[str, int]) -> list[dict]:
    """Every claim 06 records, in its order, each only where the runs it compares were made.
    ``summary``: protocol means by method (``lpips``, ``gaze_error_deg`` columns); ``painter``: the
    GAN's LPIPS, its mask filled with the target's pixels, the unchanged input's; ``iterations``: how
    long each method's model trained ("GAN", "GAN reference", "GAN no cycle" …, and ``deepwarp``'s where
    given), which each claim's note states and its ``length`` holds (the length its spread is taken at)."""
    lpips, gaze_error = summary["lpips"], summary["gaze_error_deg"]
    ref = "GAN reference" if "GAN reference" in summary.index else "GAN"  # the full recipe at the ablations' length
    steps = int(iterations["GAN"])
    at_ref = dict(reference=ref, iterations=iterations)
    claims = [beats_deepwarp(per_bin, m, deepwarp=deepwarp, steps=steps, by_length=by_length)
              for m in ("lpips", "gaze_error_deg")]
    if "no_gaze" in ablations:
        claims.append(no_gaze_loss_gaze_does_not_move(gaze_error, **at_ref))
    claims += [term_raises_lpips(a, lpips, **at_ref) for a in ("no_cycle", "no_perceptual") if a in ablations]
    claims += [lpips_below_unchanged_input(lpips, steps=steps), gaze_error_below_unchanged_input(gaze_error, steps=steps),
               keeps_skin_tone(skin_tone_r)]
    if "authors" in ablations:
        claims.append(departures_keep_skin_tone(skin_tone_r, **at_ref))
    if {"authors", "no_identity"} <= set(ablations):
        claims.append(keep_mask_lowers_repaint_floor(repaint_floor, iterations=iterations))
    if "no_identity" in ablations:
        claims.append(identity_term_lowers_repaint_floor(repaint_floor, **at_ref))
    if "no_target" in ablations and mask_story is not None:
        claims.append(target_term_opens_the_mask(mask_story, **at_ref))
    claims.append(mask_opens_where_the_eye_changes(*painter, steps=steps))
    for claim in claims:   # the lengths its margin rests on: the methods it measured that trained (DeepWarp's too)
        compared = {m: int(n) for m, n in iterations.items() if m in claim["measured"]}
        if claim["name"].startswith("gan_beats_deepwarp"):
            compared = {"GAN": steps, **({deepwarp: int(iterations[deepwarp])} if deepwarp in iterations else {})}
        claim["length"] = compared or steps
    return claims
