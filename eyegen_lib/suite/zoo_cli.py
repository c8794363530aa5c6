"""``eyegen zoo``: list, verify and add the model zoo's entries.

    eyegen zoo list                       # what the zoo holds: name, steps, size, headline metrics
    eyegen zoo verify [--no-eval]         # sha256, loads through the registry, re-evaluates (a test runs it)
    eyegen zoo add BUILD/checkpoints/cpu/seed0/gaze_gan_full.pt --name gaze_gan/full \\
        --command "eyegen train gaze_gan --profile cpu --steps 10000 --keep-at 1000 2000 5000"   # maintainers
    eyegen zoo add …/gaze_gan_full.step2000.pt --name gaze_gan/reference --as-variant reference --command …
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..core.checkpoint import config_to_dict, load_checkpoint
from ..core.cli_types import whole_number
from ..core.profiles import get_profile
from ..runs.claim_spread import SPREAD_SDS, margins_of, read_spread, record_seed_models, write_spread
from ..runs.engine import state_path
from ..runs.environment import machine_description
from ..runs.family import families
from ..runs.record import read_metrics
from ..runs.zoo import ZooError, export_entry, read_manifest, upsert_entry, zoo_dir
from ..runs.zoo_verify import check_metrics, headline_metrics, load_for_check, verify_zoo, within_tolerance

__all__ = ["add_zoo_parser"]


def _cmd_list(args) -> int:
    folder = args.folder or zoo_dir()
    entries = read_manifest(folder)["entries"]
    if not entries:
        print(f"the zoo at {folder} is empty")
        return 0
    total = 0
    for e in entries:
        size = (folder / e["file"]).stat().st_size if (folder / e["file"]).exists() else 0
        total += size
        head = ", ".join(f"{k} {v:.4g}" for k, v in e.get("metrics", {}).items() if isinstance(v, (int, float))
                         and not k.endswith("_images"))
        print(f"{e['name']:<34} {e['profile']:>5} seed {e['seed']}  {e['steps']:>6} steps  {size / 1e6:5.2f} MB  "
              f"{e['wall_seconds'] / 60:6.1f} min  {head}")
    print(f"{len(entries)} entries, {total / 1e6:.1f} MB in {folder}")
    return 0


def _cmd_verify(args) -> int:
    def line(entry, problems):
        print(("ok     " if not problems else "FAILED ") + entry["name"] + f"  ({entry['file']})", flush=True)
        for p in problems:
            print("       " + p.replace("\n", "\n       "))

    problems = verify_zoo(args.folder, evaluate=not args.no_eval, on_entry=line)
    if problems:
        print(f"eyegen zoo verify: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("every zoo entry holds")
    return 0


def _wall_seconds(artifact: Path, ckpt: dict) -> tuple[float | None, str]:
    """(seconds, what they are): a snapshot's own time to its step where it kept it, else its run's
    training state (the whole run so far)."""
    import torch

    own = (ckpt.get("extra") or {}).get("train_seconds")
    if own is not None:
        return float(own), ""
    stem = artifact.stem.split(".step")[0]
    state = state_path(artifact.with_name(stem + ".pt"))
    if not state.exists():
        return None, ""
    seconds = float(torch.load(state, map_location="cpu", weights_only=True).get("train_seconds", 0.0))
    snapshot = (ckpt.get("extra") or {}).get("snapshot_of") or int(ckpt["step"]) < int(ckpt["config"].get("steps", 0))
    return seconds, ("the whole run's, of which this entry is the snapshot after "
                     f"{int(ckpt['step'])} steps" if snapshot else "")


def _cmd_add(args) -> int:
    artifact = Path(args.artifact)
    if not artifact.is_file():
        raise ZooError(f"no artifact at {artifact}: train it first with eyegen train")
    folder = args.folder or zoo_dir()
    source = load_checkpoint(artifact)
    prov = source.get("provenance") or {}
    profile = get_profile(prov["profile"])
    family = args.name.partition("/")[0]
    if family not in families():
        raise ZooError(f"--name must start with a model family's name ({', '.join(families())}), got {args.name!r}")
    as_config = None
    made_from = ""
    if args.as_variant:
        named = args.name.partition("/")[2].partition("@")[0]
        if named != args.as_variant:   # the entry (and its file) is the name's: it would replace another
            raise ZooError(f"--as-variant {args.as_variant} files the snapshot as {family}/{args.as_variant}: "
                           f"give --name {family}/{args.as_variant}, not {args.name}")
        # a snapshot of a long run with a constant learning rate up to its step IS a run of that length
        step = int(source["step"])
        long = source["config"]
        constant_until = long["steps"] * long.get("decay_start", 1.0)
        if step > constant_until:
            raise ZooError(f"{artifact.name} is step {step} of a run whose learning rate decays from step "
                           f"{constant_until:g}: it is not a {step}-step run")
        fam = families()[family]
        if fam.variant_word != "ablation":
            raise ZooError(f"--as-variant is for {' and '.join(n for n, f in families().items() if f.variant_word == 'ablation')}, "
                           f"not {family}")
        from dataclasses import replace

        as_config = config_to_dict(replace(fam.config(profile, args.as_variant), steps=step))
        made_from = f"{artifact.name}: the long run after {step} steps at a constant learning rate (a {step}-step run)"
    wall, wall_note = (args.wall_seconds, "") if args.wall_seconds is not None else _wall_seconds(artifact, source)
    if wall is None:
        raise ZooError(f"no training state beside {artifact} to read its wall time from: give --wall-seconds")
    sub = folder / profile.name
    sub.mkdir(parents=True, exist_ok=True)
    file_name = f"{args.name.replace('/', '_').replace('@', '.step')}.pt"

    machine = args.machine or machine_description()
    entry = None
    for half in ((True, False) if not args.fp32 else (False,)):
        entry = export_entry(artifact, sub, name=args.name, half=half, command=args.train_command, machine=machine,
                             wall_seconds=wall, as_config=as_config, made_from=made_from, file_name=file_name)
        upsert_entry(entry, folder)
        os.environ["EYEGEN_ZOO_DIR"] = str(folder)
        model = load_for_check(entry)
        if wall_note:
            entry["wall_note"] = wall_note
        entry["check"] = check_metrics(args.name.partition("@")[0], model, profile, prov["seed"])
        if half:  # fp16 only where the figures stay within tolerance of the fp32 model's
            import copy

            original = copy.deepcopy(model)
            original.load_state_dict(load_checkpoint(artifact)["models"]["model"])
            fp32 = check_metrics(args.name.partition("@")[0], original, profile, prov["seed"])
            if within_tolerance(entry["check"], fp32):
                print(f"note: {args.name} in fp16 misses its fp32 figures ({fp32} vs {entry['check']}): kept in fp32")
                continue
        break
    if not entry["metrics"]:  # its training (or a snapshot) evaluated nothing: measure the headline figures here
        entry["metrics"] = headline_metrics(args.name, model, profile, prov["seed"])
    upsert_entry(entry, folder)
    size = (folder / entry["file"]).stat().st_size
    print(f"added {entry['file']} ({size / 1e6:.2f} MB, {'fp16' if entry['half'] else 'fp32'}, {entry['steps']} steps): "
          f"check {entry['check']}, metrics {entry['metrics']}")
    return 0


def measure_spread(profile: str, seeds: Sequence[int], *, only: Sequence[str], out: Path,
                   folder: Path | None = None, timeout: int | None = None, pretrained: bool = False,
                   zoo_for_seed: Mapping[int, Path] | None = None) -> tuple[Path, dict]:
    """Run notebooks ``only`` at each seed, collect their claims' margins at the lengths they record,
    and merge them into the spread file. By default nothing comes from a zoo (every model at the
    profile's length); with ``pretrained`` each seed takes a zoo's entries where they serve it — seed S
    the folder ``zoo_for_seed[S]`` (its models trained as long as the shipped zoo's), a seed without one
    the shipped zoo — so that the margins, and their spread, are at the zoo's lengths."""
    from .runner import list_notebooks, run_notebooks  # papermill and nbconvert: only when spreads are measured

    if not seeds:
        raise ValueError("name the seeds to run (--seeds): they join the seeds on file at each claim's length")
    zoo_for_seed = {int(k): Path(v) for k, v in (zoo_for_seed or {}).items()}
    if zoo_for_seed and not pretrained:
        raise ZooError("a zoo for a seed serves only a run that takes the zoo: add --pretrained")
    for seed, zoo in zoo_for_seed.items():
        if not (zoo / "MANIFEST.json").is_file():
            raise ZooError(f"the zoo for seed {seed}, {zoo}, has no MANIFEST.json: fill it with eyegen zoo add --folder {zoo}")
    records: dict[int, list] = {}
    for seed in seeds:
        run_out = Path(out) / f"seed{seed}"
        zoo = zoo_for_seed.get(int(seed))
        old = os.environ.get("EYEGEN_ZOO_DIR")
        if zoo is not None:   # the notebooks' kernels inherit it
            os.environ["EYEGEN_ZOO_DIR"] = str(zoo.resolve())
        try:
            summary = run_notebooks(profile, only=only, out=run_out, seed=int(seed), pretrained=pretrained,
                                    timeout=timeout)
        finally:
            if zoo is not None:
                os.environ.pop("EYEGEN_ZOO_DIR", None) if old is None else os.environ.__setitem__("EYEGEN_ZOO_DIR", old)
        failed = [n["notebook"] for n in summary["notebooks"] if n["notebook"] in summary["ran"] and n["status"] != "ok"]
        if failed:
            raise RuntimeError(f"seed {seed}: {', '.join(failed)} failed; see {run_out / 'report.html'}")
        records[int(seed)] = [(nb.stem, c) for nb in list_notebooks(only)
                              for c in read_metrics(nb.stem, out=run_out).get("claims", [])]
    measured = margins_of(records)
    record_seed_models(profile, zoo_for_seed, folder=folder)   # what the extra seeds' margins rest on
    return write_spread(profile, measured, folder=folder), measured


def _cmd_spread(args) -> int:
    bad = [seed for seed, _ in args.zoo_for_seed or () if not seed.isdigit() or int(seed) not in args.seeds]
    if bad:
        raise ZooError(f"--zoo-for-seed {bad[0]}: give one of the run's --seeds ({', '.join(map(str, args.seeds))})")
    path, measured = measure_spread(args.profile, args.seeds, only=args.only, out=args.out, folder=args.folder,
                                    timeout=args.timeout, pretrained=args.pretrained,
                                    zoo_for_seed={int(seed): Path(zoo) for seed, zoo in args.zoo_for_seed or ()})
    on_file = read_spread(args.profile, args.folder)["claims"]   # this run's seeds joined with those on file
    for name, lengths in sorted(measured.items()):
        for length in sorted(lengths):
            e = on_file[name][length]
            margins = ", ".join(f"seed {seed} {m:+.4g}" for seed, m in e["margins"].items())
            sd = "—" if e["sd"] is None else f"{e['sd']:.3g}"
            verdict = ("" if e["sd"] is None else
                       ("  inconclusive at this length" if abs(e["mean"]) <= SPREAD_SDS * e["sd"] else ""))
            print(f"{name:<48} at {length:<12} margins {margins}  sd {sd}{verdict}")
    print(f"wrote {path}")
    return 0


def add_zoo_parser(sub) -> None:

    zoo = sub.add_parser("zoo", help="the model zoo: list, verify, add entries",
                         description="The model zoo: models trained far longer than a notebook run, shipped in zoo/.")
    zsub = zoo.add_subparsers(dest="action", required=True)
    lst = zsub.add_parser("list", help="the entries: name, steps, size, wall time, headline metrics")
    lst.add_argument("--folder", type=Path, default=None, help="a zoo folder (default: zoo/ in the checkout)")
    lst.set_defaults(func=_cmd_list)
    ver = zsub.add_parser("verify", help="sha256 of every entry, load through the registry, re-evaluate on a small "
                                         "held-out set against the MANIFEST")
    ver.add_argument("--folder", type=Path, default=None, help="a zoo folder (default: zoo/ in the checkout)")
    ver.add_argument("--no-eval", action="store_true", help="check files and loading only")
    ver.set_defaults(func=_cmd_verify)
    spr = zsub.add_parser("spread", help="maintainers: run notebooks at several seeds (no zoo) and record each "
                                         "claim's seed-to-seed spread in zoo/<profile>/claim_spread.json")
    spr.add_argument("--profile", default="cpu", help="the profile (default: cpu)")
    spr.add_argument("--seeds", nargs="+", type=whole_number(0, option="--seeds"), default=[0, 1, 2],
                     help="seeds (default: 0 1 2); their margins join those of other seeds on file at the same length")
    spr.add_argument("--only", nargs="+", required=True, help="notebooks, e.g. 05 07")
    spr.add_argument("--out", type=Path, required=True, help="where the seeds' runs go (one folder per seed)")
    spr.add_argument("--timeout", type=whole_number(1, option="--timeout", what="a positive number of seconds"),
                     default=None, help="seconds each notebook may run (default: 3× its card's time, as eyegen run)")
    spr.add_argument("--folder", type=Path, default=None, help="a zoo folder (default: zoo/ in the checkout)")
    spr.add_argument("--pretrained", action="store_true",
                     help="each seed takes the zoo's models (seed S those of its --zoo-for-seed folder): the spread at "
                          "the zoo's lengths (default: every model trained at the profile's length)")
    spr.add_argument("--zoo-for-seed", nargs=2, action="append", metavar=("SEED", "FOLDER"),
                     help="a zoo folder holding seed SEED's models (eyegen train --seed SEED …, then eyegen zoo add "
                          "--folder FOLDER); repeat per seed")
    spr.set_defaults(func=_cmd_spread)
    add = zsub.add_parser("add", help="maintainers: export an artifact eyegen train made into the zoo")
    add.add_argument("artifact", help="the .pt file eyegen train wrote (or a --keep-at snapshot of it)")
    add.add_argument("--name", required=True, help="registry name, e.g. gaze_gan/full, deepwarp/cfw_lcm, "
                                                   "segmenter; a length snapshot: gaze_gan/full@2000")
    # dest is not "command": that is the top-level subcommand's, which main() reads to report zoo errors
    add.add_argument("--command", dest="train_command", required=True, help="the exact eyegen train command that made it")
    add.add_argument("--as-variant", default=None, help="file a constant-learning-rate snapshot as this variant "
                                                        "(the ablations' reference)")
    add.add_argument("--wall-seconds", type=float, default=None, help="default: from its training state")
    add.add_argument("--machine", default=None, help="default: this machine")
    add.add_argument("--fp32", action="store_true", help="keep fp32 weights (default: fp16 where figures hold)")
    add.add_argument("--folder", type=Path, default=None, help="a zoo folder (default: zoo/ in the checkout)")
    add.set_defaults(func=_cmd_add)
