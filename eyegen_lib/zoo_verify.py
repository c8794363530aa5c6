"""``eyegen zoo verify``: every zoo entry is the bytes its MANIFEST lists, loads through the registry
for the run it was made for, and still scores what it scored when it was exported.

The re-evaluation (:func:`check_metrics`) runs each model on a small fixed held-out set of its run —
eight test-person NIR images for the OpenEDS models, 64 protocol pairs of the first test eye for the
redirection models, 64 test-person patches for the gaze estimators — and compares with the figures
:func:`~eyegen_lib.zoo.export_entry`'s caller stored as ``entry["check"]``, within
:data:`CHECK_TOLERANCE`. A renderer, protocol or config change makes an entry stale: its run then has
another data fingerprint or config, no entry serves it, and verify names the ``eyegen train`` command
that rebuilds it.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch

from .zoo import ZooError, read_manifest, verify_files, zoo_dir

__all__ = ["CHECK_TOLERANCE", "check_metrics", "headline_metrics", "load_entry_through_registry", "verify_zoo",
           "within_tolerance"]

# |now − then| ≤ rel·|then| + abs: the same weights on another CPU (other oneDNN kernels) differ by far
# less; a retrained, altered or mis-loaded model by far more
CHECK_TOLERANCE = {"rel": 0.02, "abs": 1e-3}
CHECK_IMAGES = {"openeds": 8, "redirection": 64, "gaze": 64}


def _request(entry: Mapping) -> tuple[str, dict]:
    """The registry call that makes ``entry``'s artifact: (artifact name, keyword arguments)."""
    name, _, variant = entry["name"].partition("/")
    if name in ("segmenter", "refiner"):
        return name, {}
    if name == "gaze_gan":
        return name, {"ablation": variant}
    if name == "gaze_estimator":
        return name, {"size": tuple(int(s) for s in variant.split("x"))}
    return name, {"variant": variant}


@contextlib.contextmanager
def _empty_outputs():
    """Registry calls that see no local artifacts (only the zoo can serve them)."""
    old = os.environ.get("EYEGEN_OUTPUT_DIR")
    with tempfile.TemporaryDirectory(prefix="eyegen-zoo-verify-") as tmp:
        os.environ["EYEGEN_OUTPUT_DIR"] = tmp
        try:
            yield Path(tmp)
        finally:
            if old is None:
                os.environ.pop("EYEGEN_OUTPUT_DIR", None)
            else:
                os.environ["EYEGEN_OUTPUT_DIR"] = old


def load_entry_through_registry(entry: Mapping, *, progress: bool = False):
    """(model, info) as a notebook with ``PRETRAINED = True`` gets it for ``entry``'s run; raises
    :class:`ZooError` naming the rebuild command when the entry no longer serves that run."""
    from . import registry
    from .checkpoint import CheckpointError
    from .profiles import get_profile

    name, kwargs = _request(entry)
    profile = get_profile(entry["profile"])
    try:
        with _empty_outputs():
            model, info = registry.get(name, profile, seed=entry["seed"], pretrained=True, train=False, progress=progress,
                                       **kwargs)
    except CheckpointError as exc:
        raise ZooError(f"{entry['file']} ({entry['name']}) no longer serves its run — the renderer, a protocol or the "
                       f"model's config changed since it was built: {str(exc).splitlines()[0]}\n"
                       f"  rebuild it with: {entry['command']}") from None
    if info.get("source") != "zoo":
        raise ZooError(f"{entry['file']}: the registry served {entry['name']} from {info.get('path')}, not the zoo")
    return model, info


def _redirection_pairs(model, family: str, profile, seed: int, n_eyes: int | None):
    """The redirection protocol's pairs of the first ``n_eyes`` test eyes (all when None) at the model's
    size; a vertical-only DeepWarp (05's ``cfw_lcm_vertical``) takes only those whose yaw is unchanged."""
    from .evaluation import build_redirection_set
    from .protocols import person_split, redirection_eyes, rgb_source, split_indices

    source = rgb_source(profile, seed=seed, size=tuple(model.config.image_size))
    eyes = redirection_eyes(source, split_indices(source, person_split(profile, seed=seed))["test"])
    rset = build_redirection_set(source, eyes[:n_eyes])
    return rset.same_yaw() if family == "deepwarp" and model.config.angle_dims == 1 else rset


@torch.no_grad()
def check_metrics(name: str, model, profile, seed: int) -> dict:
    """The model's figures on a small fixed held-out set of its run (see the module docstring)."""
    from .data.datasets import render_all
    from .protocols import gaze_estimator_source, nir_source, person_split, split_indices

    family = name.partition("/")[0]
    if family in ("segmenter", "refiner", "seg2eye"):
        source = nir_source(profile, seed=seed)
        test = split_indices(source, person_split(profile, seed=seed), labelled=True)["test"][: CHECK_IMAGES["openeds"]]
        data = render_all(source, test, progress=False)
        images, masks = data["image"], data["mask"]
        truth = images.float()
        if family == "segmenter":
            from .metrics import mean_iou
            from .models.deeplab import segment

            return {"check_miou": float(mean_iou(segment(model, images), masks))}
        if family == "refiner":
            from .models.refiner import refine

            order = torch.roll(torch.arange(len(images)), 1)  # each target refines its neighbour's image
            out, _ = refine(model, masks, images[order], masks[order])
        else:
            from .models.seg2eye import generate

            k = model.config.k_style
            out = generate(model, masks, images.unsqueeze(1).expand(-1, k, -1, -1, -1).contiguous())
        return {"check_mse": float(((out.float() - truth) ** 2).mean())}
    if family in ("gaze_gan", "deepwarp"):
        rset = _redirection_pairs(model, family, profile, seed, 1)
        keep = torch.arange(min(CHECK_IMAGES["redirection"], len(rset)))
        if family == "gaze_gan":
            from .models.gaze_gan import redirect

            out = redirect(model, rset.source[keep], rset.target_gaze[keep])
        else:
            from .models.deepwarp import redirect

            angle = rset.target_gaze[keep].float() - rset.source_gaze[keep].float()
            out = redirect(model, rset.source[keep], rset.landmarks[keep], angle)
        return {"check_mse": float(((out.float() - rset.target[keep].float()) ** 2).mean())}
    if family in ("gaze_estimator", "augmentation_estimator"):
        from .data.rows import gaze_labels, rows_of
        from .gaze import angular_error_deg
        from .images import to_signed
        from .models.gaze_estimator import predict_gaze

        size = tuple(int(s) for s in name.partition("/")[2].split("x")) if family == "gaze_estimator" else None
        source = gaze_estimator_source(profile, seed=seed, size=size)
        test = split_indices(source, person_split(profile, seed=seed))["test"][: CHECK_IMAGES["gaze"]]
        rows = rows_of(source, test, ("image", "gaze"), in_memory=True, progress=False)
        batch = rows.fetch(list(range(len(rows))))
        pred = predict_gaze(model, to_signed(batch["image"])).double()
        return {"check_gaze_error_deg": float(angular_error_deg(pred, gaze_labels(rows).double()).mean())}
    raise ZooError(f"no held-out check is defined for {name!r}")


@torch.no_grad()
def headline_metrics(name: str, model, profile, seed: int, *, progress: bool = False) -> dict:
    """Held-out figures for a MANIFEST entry whose training run evaluated nothing itself: the redirection
    models on every protocol pair of the test eyes at their size (LPIPS and MSE to the real eye at the
    target gaze), Seg2Eye on the OpenEDS protocol's targets with their K style images (challenge score,
    LPIPS), the refiner on those targets from their top-1 reference (challenge score, blurriness),
    §5.6's estimators on 08's two test sets (mean angular error). Empty for the others (their
    artifacts carry their own evaluation)."""
    from .evaluation import evaluate_openeds
    from .metrics import lpips_distance

    family = name.partition("/")[0]
    if family in ("gaze_gan", "deepwarp"):
        rset = _redirection_pairs(model, family, profile, seed, profile.redirection_eyes or None)
        from .images import to_signed

        if family == "gaze_gan":
            from .models.gaze_gan import redirect_set
        else:
            from .models.deepwarp import redirect_set
        out = redirect_set(model, rset, progress=progress)
        lp = lpips_distance(to_signed(out), to_signed(rset.target))
        return {"protocol_lpips": float(lp.mean()), "protocol_mse": float(((out.float() - rset.target.float()) ** 2).mean()),
                "protocol_pairs": len(rset)}
    if family == "seg2eye":
        from .models.seg2eye import StyleBatches, generate
        from .protocols import openeds_protocol, person_side_groups

        test = openeds_protocol(profile, seed=seed)["test"]
        groups = person_side_groups(test)
        idx = StyleBatches(test, groups, k_style=model.config.k_style, batch_size=1, seed=seed).style_for(range(len(test["image"])))
        df = evaluate_openeds(generate(model, test["mask"], test["image"][idx]), test["image"], test["mask"])
        return {"challenge_score": float(df["challenge_score"].mean()), "lpips": float(df["lpips"].mean()),
                "blurriness": float(df["blurriness"].mean()), "targets": len(df)}
    if family == "refiner":
        from . import registry
        from .metrics import blurriness, challenge_score
        from .models.refiner import refine
        from .protocols import rank_targets, ranking_setup

        with _empty_outputs():  # its references come from the zoo's segmenter, as in 03
            seg, _ = registry.segmenter(profile, seed=seed, pretrained=True, train=False, progress=progress)
        setup = ranking_setup(profile, seg, seed=seed, progress=progress)
        test, pool = setup["test"], setup["pool"]
        top1 = rank_targets(setup, test, 1)[:, 0]
        out, _ = refine(model, test["mask"], pool["image"][top1], pool["pseudo"][top1])
        return {"challenge_score": float(challenge_score(out.float(), test["image"].float()).mean()),
                "blurriness": float(blurriness(out.float()).mean()), "targets": len(out)}
    if family == "augmentation_estimator":
        from .augmentation import pitch_split_sets, score_estimator

        sets = pitch_split_sets(profile, seed=seed, progress=progress)
        return {f"{test}_error_deg": score_estimator(model, sets[test])["error_deg"]
                for test in ("held_out_pitch", "other_persons")}
    return {}


def within_tolerance(now: Mapping, then: Mapping) -> list[str]:
    """The figures of ``then`` that ``now`` misses by more than :data:`CHECK_TOLERANCE`."""
    bad = []
    for key, ref in then.items():
        value = now.get(key)
        if value is None or abs(value - ref) > CHECK_TOLERANCE["rel"] * abs(ref) + CHECK_TOLERANCE["abs"]:
            bad.append(f"{key} {value if value is None else f'{value:.4g}'} (MANIFEST: {ref:.4g}, tolerance "
                       f"{CHECK_TOLERANCE['rel']:.0%} + {CHECK_TOLERANCE['abs']:g})")
    return bad


def load_for_check(entry: Mapping):
    """The model of ``entry`` as the notebooks get it: through the registry, or — a length snapshot
    ``<name>@<step>`` — through :func:`~eyegen_lib.registry.length_snapshots`."""
    from .profiles import get_profile
    from .registry import length_snapshots

    name, _, at = entry["name"].partition("@")
    if not at:
        return load_entry_through_registry(entry)[0]
    family, _, variant = name.partition("/")
    found = {s: m for s, m, _ in length_snapshots(family, get_profile(entry["profile"]), variant, seed=entry["seed"])}
    if int(at) not in found:
        raise ZooError(f"{entry['file']} ({entry['name']}) no longer serves its run; rebuild it with: {entry['command']}")
    return found[int(at)]


def verify_zoo(folder: Path | None = None, *, evaluate: bool = True, progress: bool = False,
               on_entry=None) -> list[str]:
    """Problems with the zoo (empty when every entry holds): files missing or altered, entries that
    no longer serve their run, and — with ``evaluate`` — figures that moved. ``on_entry(entry,
    problems)`` is called per entry (the CLI prints a line)."""
    from .profiles import get_profile

    folder = Path(folder) if folder is not None else zoo_dir()
    manifest = read_manifest(folder)
    if not manifest["entries"]:
        return [f"{folder / 'MANIFEST.json'} lists no entries"]
    old = os.environ.get("EYEGEN_ZOO_DIR")
    os.environ["EYEGEN_ZOO_DIR"] = str(folder)
    problems: list[str] = []
    try:
        for entry in manifest["entries"]:
            own = verify_files({"entries": [entry]}, folder)
            if not own:
                try:
                    name = entry["name"].partition("@")[0]
                    model = load_for_check(entry)
                    if evaluate and entry.get("check"):
                        now = check_metrics(name, model, get_profile(entry["profile"]), entry["seed"])
                        moved = within_tolerance(now, entry["check"])
                        if moved:
                            own.append(f"{entry['file']}: re-evaluated on its held-out check set, " + "; ".join(moved)
                                       + f"; rebuild it with: {entry['command']}")
                except ZooError as exc:
                    own.append(str(exc))
            problems += own
            if on_entry is not None:
                on_entry(entry, own)
    finally:
        if old is None:
            os.environ.pop("EYEGEN_ZOO_DIR", None)
        else:
            os.environ["EYEGEN_ZOO_DIR"] = old
    return problems
