"""Seg2Eye's paper claims (§4.3, §5.2) judged from notebook 04's scores.

Each function takes the scores 04 computes (dicts of ``challenge_score``, ``lpips``, ``blurriness``,
``content_miou``, ``style_accuracy``, ``style_margin``) and returns the keyword arguments of
:meth:`eyegen_lib.runs.record.Recorder.claim` — statement, what was measured, whether it holds and by what
margin — so the arithmetic lives here, tested, and the notebook only records it.
"""
from __future__ import annotations

from collections.abc import Mapping

__all__ = ["worse_score_but_sharper", "style_branch_preserves_style", "style_consistency_smooths_interpolation",
           "content_follows_mask", "CONTENT_MIOU_FLOOR"]

CONTENT_MIOU_FLOOR = 0.8
_PARTS = ("challenge_score", "blurriness", "lpips")


def _versus_refiner(s: Mapping, r: Mapping, real: Mapping) -> tuple[dict, bool, float]:
    """(measured, holds, margin) of Seg2Eye against the refiner on one set of scores. The margin is the
    smallest relative lead of the three parts: a worse (higher) challenge score, a lower LPIPS, and a
    blurriness nearer the real images'."""
    gap = lambda x: abs(x["blurriness"] - real["blurriness"])
    parts = [(s["challenge_score"] - r["challenge_score"]) / r["challenge_score"],
             (r["lpips"] - s["lpips"]) / r["lpips"],
             (gap(r) - gap(s)) / max(gap(r), 1e-12)]
    measured = {"seg2eye": {k: float(s[k]) for k in _PARTS}, "refiner": {k: float(r[k]) for k in _PARTS},
                "real images": {"blurriness": float(real["blurriness"])}}
    return measured, all(p > 0 for p in parts), float(min(parts))


def worse_score_but_sharper(s: Mapping, refiner: Mapping, real: Mapping, *, steps: int,
                            by_length: Mapping[int, Mapping] | None = None) -> dict:
    """Seg2Eye §5.2: a worse challenge score than the refiner, but blurriness nearer real images and a
    lower LPIPS. ``s``: Seg2Eye's scores after ``steps``; ``by_length``: its scores at other lengths."""
    measured, holds, margin = _versus_refiner(s, refiner, real)
    at = {}
    for step, scores in (by_length or {}).items():
        m, h, g = _versus_refiner(scores, refiner, real)
        at[step] = {"holds": h, "margin": g, "measured": m}
    return dict(name="seg2eye_worse_score_but_sharper_than_refiner", paper="Seg2Eye §5.2",
                statement="Seg2Eye: worse (higher) challenge score than the refiner, but blurriness nearer real "
                          "images and lower LPIPS",
                measured=measured, holds=holds, margin=margin, by_length=at,
                note=f"Seg2Eye after {steps} steps; margin: the smallest relative lead of the three parts")


def style_branch_preserves_style(reference: Mapping, gaugan: Mapping, longest: Mapping, *, steps: int,
                                 longest_steps: int, chance: float) -> dict:
    """Seg2Eye §5.2: without the style branch (GauGAN) style preservation falls. ``reference`` and
    ``gaugan`` at the same ``steps``; ``longest``: the full recipe at ``longest_steps``, shown beside
    them. A tie in accuracy is broken by the style margin."""
    acc_ref, acc_gg = float(reference["style_accuracy"]), float(gaugan["style_accuracy"])
    holds = acc_ref > acc_gg or (acc_ref == acc_gg and float(reference["style_margin"]) > float(gaugan["style_margin"]))
    entry = lambda x: {"accuracy": float(x["style_accuracy"]), "margin": float(x["style_margin"])}
    return dict(name="style_branch_preserves_style", paper="Seg2Eye §5.2",
                statement="without the style branch (GauGAN) style preservation falls",
                measured={"seg2eye": entry(reference), "gaugan": entry(gaugan),
                          f"seg2eye after {longest_steps} steps": entry(longest)},
                holds=bool(holds), margin=acc_ref - acc_gg,
                note=f"both at {steps} steps; margin: the accuracy difference; judged by Seg2Eye's style encoder; "
                     f"chance accuracy {chance:.3f}")


def style_consistency_smooths_interpolation(evenness: Mapping[str, float], *, steps: int,
                                            with_name: str = "seg2eye (reference)",
                                            without_name: str = "no style consistency") -> dict:
    """Seg2Eye §4.3: without the style-consistency losses the interpolation between two styles is less
    even. ``evenness``: largest frame-to-frame step / mean step of each model's strip (lower = smoother)."""
    with_, without = float(evenness[with_name]), float(evenness[without_name])
    return dict(name="style_consistency_smooths_interpolation", paper="Seg2Eye §4.3",
                statement="without the style-consistency losses the interpolation is less smooth (less even)",
                measured={k: float(v) for k, v in evenness.items()}, holds=bool(without > with_),
                margin=without - with_,
                note=f"both at {steps} steps; evenness = largest frame-to-frame step / mean step; one strip each, "
                     "so this is a noisy measure")


def content_follows_mask(s: Mapping, real: Mapping, *, by_length: Mapping[int, Mapping] | None = None) -> dict:
    """Seg2Eye §5.2: generated eyes follow their mask — the segmenter finds the input mask in the output
    with mIoU ≥ :data:`CONTENT_MIOU_FLOOR`."""
    judge = lambda x: (bool(x["content_miou"] >= CONTENT_MIOU_FLOOR), float(x["content_miou"] - CONTENT_MIOU_FLOOR))
    holds, margin = judge(s)
    at = {}
    for step, scores in (by_length or {}).items():
        h, g = judge(scores)
        at[step] = {"holds": h, "margin": g, "measured": {"content_miou": float(scores["content_miou"])}}
    return dict(name="content_follows_mask", paper="Seg2Eye §5.2",
                statement=f"generated eyes follow the mask (content mIoU ≥ {CONTENT_MIOU_FLOOR})",
                measured={"content_miou": float(s["content_miou"]), "real images": float(real["content_miou"])},
                holds=holds, margin=margin, by_length=at)
