"""What the report says beside a claim: the paper's own value where the paper gives one, an account of
why a claim may not hold here, and the claims that pull against each other.

Kept in one place, by claim name, so a notebook records only what it measured; the report
(:mod:`eyegen_lib.suite.report`) joins these on the recorded claims. Accounts are phrased as what the
project found when it looked (DESIGN.md and the issues' notes), not as results: the measured values
sit beside them in the same row.
"""
from __future__ import annotations

from collections.abc import Callable

__all__ = ["PAPER_VALUES", "WHY_IT_MAY_NOT_HOLD", "TENSIONS", "paper_value", "account", "tensions"]

# What the paper shows, on which data: its numbers where it prints them (or the authors' code does);
# where a figure only plots them, what it shows, said so. Never a number read off a plot or guessed.
_PLOTTED = "values plotted, not printed"
_TABLE3_LOST = "Table 3's numbers did not survive our copy of the paper"
PAPER_VALUES: dict[str, str] = {
    "class_means_like_openeds": "skin 125.7, sclera 103.2, iris 76.5, pupil 34.1 (OpenEDS training set; Seg2Eye's code)",
    "table1_shift_highest_mse_lowest_lpips": "MSE blurred 69.6, noisy 155.4, shifted 176.1; LPIPS 0.122, 0.106, 0.016 "
                                             "(He et al. 2019, Table 1, on one eye patch)",
    "refiner_beats_copy_beats_mean": "the refiner's score was the lowest of all teams (OpenEDS challenge test set; the "
                                     "scores did not survive our copy of the paper)",
    "variant_order_at_large_angles": f"errors grow with the angle and the models part: palette best, then the multi-scale "
                                     f"models with coarse warping (DeepWarp's own 33-person dataset, Fig. 6; {_PLOTTED})",
    "gan_beats_deepwarp_lpips": f"the GAN below DeepWarp at every correction angle, 4.9°–35.9° (Columbia Gaze, Fig. 5a; "
                                f"{_PLOTTED}); users preferred the GAN in 78–91 % of pairs (Table 2)",
    "gan_beats_deepwarp_gaze_error_deg": f"the GAN's gaze error much lower than DeepWarp's (Columbia Gaze, Fig. 5c; {_PLOTTED})",
    "no_gaze_loss_gaze_does_not_move": "without the gaze loss the model fails to redirect the gaze entirely (Columbia "
                                       "Gaze, Fig. 6; shown, not measured)",
    "no_cycle_raises_lpips": f"LPIPS rises without the cycle loss (Columbia Gaze, Fig. 7a; {_PLOTTED})",
    "no_perceptual_raises_lpips": f"LPIPS rises without the perceptual loss (Columbia Gaze, Fig. 7a; {_PLOTTED})",
    "augmentation_lowers_error_held_out_pitch": f"the augmented estimator's error below the raw one's on Columbia's "
                                                f"held-out pitches (Table 3; {_TABLE3_LOST})",
    "augmentation_lowers_error_mpiigaze": f"the augmented estimator's error below the raw one's on MPIIGaze (Table 3; "
                                          f"{_TABLE3_LOST})",
}

_SHORT = ("at the cpu profile's own length the models are far from the paper's training; the zoo's longer models "
          "and the by-length column show the trend")

WHY_IT_MAY_NOT_HOLD: dict[str, str] = {
    "class_means_like_openeds": "the renderer samples skin tone and a headset session's exposure per person: frames "
                                "of a few persons move the skin mean by more than the 15-level band (01 spreads its "
                                "frames over every person)",
    "ranking_beats_random": "ranked references beat random ones by far at every seed; the other half (random same-mode "
                            "beats random other-mode) flips with the seed: the renderer's two modes differ less than "
                            "OpenEDS's",
    "same_mode_references_score_better": "the renderer's two modes differ less than OpenEDS's",
    "colouring_helps": "the raw labels 0–3 are themselves nearly an affine colouring of the class means (02 §4), so "
                       "colouring changes the ranking little; the small loss is stable over seeds",
    "refiner_beats_copy_beats_mean": "the refiner is trained on few rendered persons; " + _SHORT,
    "refiner_outputs_blurry": "the refiner adds a residual to a sharp reference image and keeps much of its detail; "
                              "whether it ends blurrier than real images flips with the seed",
    "seg2eye_worse_score_but_sharper_than_refiner": "Seg2Eye draws each mask exactly and the L2 score rewards that, so "
                                                    "its score is better than the refiner's here, against the paper; "
                                                    "its outputs stay blurrier than the refiner's at every zoo length",
    "style_branch_preserves_style": "the GauGAN baseline reads a downsampled style image, which carries the renderer's "
                                    "few style factors (skin tone, iris colour) well; on OpenEDS it collapsed to one "
                                    "style (Seg2Eye §5.2), which the renderer's simpler styles do not provoke",
    "style_consistency_smooths_interpolation": "evenness is measured on one interpolation strip per model, a noisy "
                                               "measure whose sign flips with the seed at short lengths",
    "content_follows_mask": _SHORT,
    "variant_order_at_large_angles": "DeepWarp's variants are close at short training; " + _SHORT,
    "cfw_lcm_beats_input_at_every_angle": "at small angles the unchanged input is already close to the target; "
                                          + _SHORT,
    "lcm_helps_most_where_eye_white_disoccluded": "the tertiles hold few pairs each; " + _SHORT,
    "registration_aware_loss_sharpens": "the misregistration is simulated (shifted targets), not the paper's real "
                                        "head-fixed captures",
    "gan_beats_deepwarp_lpips": "DeepWarp warps the input's own pixels, so on the renderer's clean eyes it keeps "
                                "appearance almost exactly; the GAN paints where its keep mask opens, through a 16×16 "
                                "bottleneck, at a quarter of the paper's widths and about a fortieth of its iterations at cpu",
    "gan_beats_deepwarp_gaze_error_deg": "DeepWarp (4,000 steps) moves the gaze closer than the GAN at cpu lengths; "
                                         "the GAN's gaze head is trained on few rendered persons",
    "no_gaze_loss_gaze_does_not_move": "the gaze still moves through the target's L1 (ours) and the perceptual losses' "
                                       "pull to the target",
    "no_cycle_raises_lpips": "our identity term also ties the output to its input, so removing the cycle term "
                             "removes less than it does from the paper's recipe; one run each, at the ablations' length",
    "no_perceptual_raises_lpips": "the perceptual terms, fed to VGG as the official code feeds it, are small by "
                                  "construction (06 §1, §5b): after λ they stay far below the cycle term",
    "gan_lpips_below_unchanged_input": "the unchanged input is the same clean rendered eye at a gaze at most 32° away "
                                       "(LPIPS ≈ 0.05): where the keep mask opens the painted iris must come closer "
                                       "to the target than the unmoved one, at cpu widths and lengths",
    "gan_keeps_skin_tone": "see 06 §5b: the keep mask and the identity term anchor the tone only as far as training "
                           "has gone",
    "our_departures_keep_skin_tone": "under the authors' recipe the sign of the skin-tone r is set by the "
                                     "initialisation (06 §5b): a seed that happens not to swap keeps skin nearly as well",
    "keep_mask_lowers_repaint_floor": "one run each, at the ablations' length; the authors' generator's floor falls as "
                                      "it learns to repaint",
    "gan_mask_opens_where_the_eye_changes": "a mask that opens too little leaves the old iris in place and one that "
                                            "opens too much lets the target's pixels do the work: one run, at the zoo length",
    "target_term_opens_the_mask": "one run each, at the ablations' length: a mask that opens without the term paints "
                                  "untrained colour (06 §5c)",
    "identity_term_lowers_repaint_floor": "one run each, at the ablations' length: the cycle term alone also pulls "
                                          "the mask towards keeping the input",
    "table1_shift_highest_mse_lowest_lpips": "the perturbations are applied to rendered patches at the paper's sizes; "
                                             "a smoother rendered patch blurs with less MSE",
    "augmentation_lowers_error_held_out_pitch": "the GAN's redirected images carry its errors into the training set",
    "augmentation_lowers_error_other_persons": "the GAN's redirected images carry its errors into the training set",
}

GENERIC_INCONCLUSIVE = ("its margin lies within 2 sd of the seed-to-seed spread: more seeds, or the spread measured at "
                        "this length, would settle it")
GENERIC_FAILS = "no account yet: see the notebook's discussion of this claim"


def paper_value(name: str) -> str:
    return PAPER_VALUES.get(name, "")


def account(claim: dict) -> str:
    """The note the report prints beside a claim that does not hold or is inconclusive ("" if it holds)."""
    state = claim.get("state") or ("holds" if claim.get("holds") else "fails")
    if state == "holds":
        return ""
    specific = WHY_IT_MAY_NOT_HOLD.get(claim.get("name", ""))
    if state == "inconclusive":
        return GENERIC_INCONCLUSIVE + (f". Likely cause of the spread: {specific}" if specific else "")
    return f"Likely why: {specific}" if specific else GENERIC_FAILS


def _blurriness_tension(refiner_claim: dict, seg2eye_claim: dict) -> str:
    a, b = refiner_claim["measured"], seg2eye_claim["measured"]
    try:
        ref03, real03 = float(a["refiner"]), float(a["real"])
        s, r, real04 = (float(b["seg2eye"]["blurriness"]), float(b["refiner"]["blurriness"]),
                        float(b["real images"]["blurriness"]))
    except (KeyError, TypeError, ValueError):
        return ""
    between = min(r, real04) <= s <= max(r, real04)
    return (f"03 finds the refiner {'blurrier' if ref03 > real03 else 'sharper'} than real images "
            f"(blurriness {ref03:.3g} against {real03:.3g}); 04 asks Seg2Eye to sit nearer real images than the "
            f"refiner does (Seg2Eye {s:.3g}, refiner {r:.3g}, real {real04:.3g}). The paper's picture needs both: "
            f"here Seg2Eye is {'between the refiner and real images' if between else 'not between the refiner and real images'}"
            f"{'' if between else (', so the two claims cannot both hold as the paper tells them')}.")


# (claim, claim, sentence from both claims' records): pairs a reader may find at odds
TENSIONS: list[tuple[str, str, Callable[[dict, dict], str]]] = [
    ("refiner_outputs_blurry", "seg2eye_worse_score_but_sharper_than_refiner", _blurriness_tension),
]


def tensions(claims: list[dict]) -> dict[str, str]:
    """{claim name: sentence} for every recorded pair in :data:`TENSIONS` (each of the two gets it)."""
    by_name = {c["name"]: c for c in claims}
    notes: dict[str, str] = {}
    for first, second, sentence in TENSIONS:
        if first in by_name and second in by_name:
            text = sentence(by_name[first], by_name[second])
            if text:
                notes[first] = f"In tension with {second}: {text}"
                notes[second] = f"In tension with {first}: {text}"
    return notes
