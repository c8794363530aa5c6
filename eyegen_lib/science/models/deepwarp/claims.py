"""DeepWarp's paper claims (§3.4, §4.5, §5, Fig. 6) judged from notebook 05's scores.

Each function takes the errors 05 computes and returns the keyword arguments of
:meth:`eyegen_lib.runs.record.Recorder.claim` — statement, what was measured, whether it holds and by what
margin (positive when it holds) — so the arithmetic lives here, tested, and the notebook records it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from ...margins import rising_margin

__all__ = ["LARGE_ORDER", "variant_order_at_large_angles", "cfw_lcm_beats_input_at_every_angle",
           "lcm_helps_most_where_eye_white_disoccluded", "registration_aware_loss_sharpens"]

LARGE_ORDER = ("cfw_lcm", "cfw", "ms", "ss")  # Fig. 6: best to worst at large angles
UNCHANGED = "unchanged input"


def _bin(b) -> str:
    return f"{b.left:g}-{b.right:g}°"


def variant_order_at_large_angles(errors, by_angle, order: Sequence[str] = LARGE_ORDER, n_bins: int = 2) -> dict:
    """DeepWarp Fig. 6: at large angles MSE rises CFW+LCM ≤ CFW ≤ MS ≤ SS. ``errors``: one row per
    test pair (``angle_deg`` and a column per variant); ``by_angle``: mean MSE per angle bin, whose
    last ``n_bins`` bins are the large angles."""
    start = by_angle.index[-n_bins].left
    at_large = errors[errors["angle_deg"] > start][list(order)].mean()
    return dict(name="variant_order_at_large_angles", paper="DeepWarp §5, Fig. 6",
                statement="at large redirection angles, MSE: " + " ≤ ".join(
                    {"cfw_lcm": "CFW+LCM", "cfw": "CFW", "ms": "MS", "ss": "SS"}.get(v, v) for v in order),
                measured={v: float(at_large[v]) for v in order},
                holds=all(at_large[a] <= at_large[b] for a, b in zip(order, order[1:])),
                margin=rising_margin(*(at_large[v] for v in order)),
                note=f"pairs with angle > {start:g}°; margin: the smallest MSE step of the order")


def cfw_lcm_beats_input_at_every_angle(by_angle) -> dict:
    """DeepWarp §5: CFW+LCM has lower MSE than the unchanged input in every angle bin."""
    lead = by_angle[UNCHANGED] - by_angle["cfw_lcm"]
    return dict(name="cfw_lcm_beats_input_at_every_angle", paper="DeepWarp §5",
                statement="CFW+LCM has lower MSE than the unchanged input in every redirection-angle bin",
                measured={_bin(b): [float(row["cfw_lcm"]), float(row[UNCHANGED])] for b, row in by_angle.iterrows()},
                holds=bool((lead > 0).all()), margin=float(lead.min()),
                note="[CFW+LCM, unchanged input] per bin; margin: CFW+LCM's smallest lead")


def lcm_helps_most_where_eye_white_disoccluded(gain: Mapping[str, float]) -> dict:
    """DeepWarp §3.4: the LCM's gain over CFW (MSE(CFW) − MSE(CFW+LCM)) is largest in the tertile of
    pairs where the most eye-white is disoccluded (``gain`` by tertile: low, mid, high)."""
    gain = {str(k): float(v) for k, v in gain.items()}
    high, others = gain["high"], max(v for k, v in gain.items() if k != "high")
    return dict(name="lcm_helps_most_where_eye_white_disoccluded", paper="DeepWarp §3.4",
                statement="the LCM's gain over CFW is largest where the most eye-white is disoccluded",
                measured=gain, holds=high > others and high > 0, margin=min(high - others, high),
                note="MSE(CFW) − MSE(CFW+LCM) per disocclusion tertile")


def registration_aware_loss_sharpens(registration: Mapping[str, Mapping[str, float]], *, misalign_px: int,
                                     window: int) -> dict:
    """DeepWarp §4.5: on misregistered pairs the registration-aware loss gives sharper (less blurry)
    outputs than L2. ``registration``: per loss ("registration-aware", "L2") its blurriness;
    ``misalign_px``: how far the targets were shifted (0: photograph pairs, misregistered as taken)."""
    aware, l2 = float(registration["registration-aware"]["blurriness"]), float(registration["L2"]["blurriness"])
    where = (f"single-scale model, targets misaligned by up to ±{misalign_px} px" if misalign_px else
             "single-scale model on photograph pairs (their own misregistration)")
    return dict(name="registration_aware_loss_sharpens", paper="DeepWarp §4.5",
                statement="on misregistered pairs, the registration-aware loss gives sharper outputs than L2",
                measured={k: float(v["blurriness"]) for k, v in registration.items()}, holds=aware < l2,
                margin=rising_margin(aware, l2), note=f"{where}, k = {window}; blurriness (lower = sharper)")
