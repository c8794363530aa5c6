"""Pieces several families share: the check's batch size, the held-out sets ``eyegen zoo verify``
re-evaluates on, the recipe of a training-pairs argument."""
from __future__ import annotations

from dataclasses import replace

from ...core.images import to_signed
from ...science.data.datasets import render_all
from ...science.data.rows import rows_of
from ...science.evaluation import build_redirection_set
from ...science.metrics import lpips_distance
from ...science.protocols import nir_source, person_split, redirection_eyes, rgb_source, split_indices

__all__ = ["CHECK_IMAGES", "sized", "nir_check_rows", "nir_held_out", "redirection_held_out", "pairs_recipe", "redirection_headline"]

CHECK_IMAGES = {"openeds": 8, "redirection": 64, "gaze": 64}


def sized(config, batch: int | None):
    """(``config`` with its batch cut to ``batch`` where smaller, the config's own batch)."""
    full = config.batch_size
    return replace(config, batch_size=min(full, batch or full)), full


def nir_check_rows(profile):
    """(source, train rows, eight test rows, split indices) of the OpenEDS-like training data, through
    the pipeline training uses (rendered by a batch's workers at a profile that streams its data)."""
    source = nir_source(profile)
    idx = split_indices(source, person_split(profile), labelled=True)
    in_memory = not profile.stream_data
    train = rows_of(source, idx["train"], ("image", "mask"), in_memory=in_memory, progress=False)
    test = rows_of(source, idx["test"][:8], ("image", "mask"), in_memory=in_memory, progress=False)
    return source, train, test, idx


def nir_held_out(profile, seed: int):
    """(images, masks) of the first :data:`CHECK_IMAGES` ["openeds"] labelled test-person frames."""
    source = nir_source(profile, seed=seed)
    test = split_indices(source, person_split(profile, seed=seed), labelled=True)["test"][: CHECK_IMAGES["openeds"]]
    data = render_all(source, test, progress=False)
    return data["image"], data["mask"]


def redirection_held_out(profile, seed: int, size, n_eyes: int | None, *, same_yaw: bool = False):
    """The redirection protocol's pairs of the first ``n_eyes`` test eyes (all when None) at ``size``
    (only those whose yaw is unchanged with ``same_yaw``: a vertical-only model)."""
    source = rgb_source(profile, seed=seed, size=tuple(size))
    eyes = redirection_eyes(source, split_indices(source, person_split(profile, seed=seed))["test"])
    rset = build_redirection_set(source, eyes[:n_eyes])
    return rset.same_yaw() if same_yaw else rset


def pairs_recipe(pairs) -> dict | None:
    """The recipe of training pairs: rendered (a dict) or streamed (``PairRows``)."""
    return pairs.get("recipe") if isinstance(pairs, dict) else getattr(pairs, "recipe", None)


def redirection_headline(outputs, rset) -> dict:
    """A redirection model's headline figures from its ``outputs`` on ``rset``: LPIPS and MSE to the
    real eye at the target gaze, and how many pairs."""
    lp = lpips_distance(to_signed(outputs), to_signed(rset.target))
    return {"protocol_lpips": float(lp.mean()), "protocol_mse": float(((outputs.float() - rset.target.float()) ** 2).mean()),
            "protocol_pairs": len(rset)}
