"""The ``eyegen`` command line.

    eyegen run [--profile auto|smoke|cpu|gpu|paper] [--only 01 03] [--out outputs]   # the main job
    eyegen list [--only 04]                                                       # the notebooks' cards
    eyegen check paper                                                            # dry run at paper shapes
    eyegen report [--out outputs]                                                 # rebuild report.html
    eyegen train MODEL [--profile P] [--seed S] [--steps N] [--variant V] [--out DIR]  # one model, resumable
    eyegen zoo list | verify | add                                                # the shipped models (zoo/)
    eyegen env [--json]                                                           # versions, device, weights, datasets
    eyegen notebooks refresh [--only …]                                           # maintainers: re-record checked outputs
    eyegen notebooks cards                                                        # maintainers: card cells + README table
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..core.cli_types import notebook_parameter, positive_number, whole_number
from ..core.version import __version__


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument gets one line (what is wrong, what is valid) rather than the usage
    block: ``eyegen run: error: argument --profile: invalid choice: 'x' (choose from …); see eyegen run --help``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        # A leaf subcommand names itself in its error (``see eyegen zoo verify --help``) instead of
        # passing the words it does not know up to ``eyegen``'s parser.
        leaf = " " in self.prog and not any(isinstance(a, argparse._SubParsersAction) for a in self._actions)
        if extras and leaf:
            self.error("unrecognized arguments: " + " ".join(extras))
        return namespace, extras


def _usable(command: str, check) -> bool:
    """Run an argument check that raises ValueError; on failure print its one line and say so."""
    try:
        check()
    except ValueError as exc:  # a DatasetError's "file:" and "fix:" lines join its problem on one line
        message = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"eyegen {command}: error: {message}", file=sys.stderr)
        return False
    return True


def _known_notebooks(command: str, only) -> bool:
    from .runner import list_notebooks

    return _usable(command, lambda: list_notebooks(only))


def _cmd_run(args) -> int:
    from ..core.paths import output_dir
    from .runner import check_output_folder, check_parameters, run_notebooks, select_notebooks

    # every argument checked before any work starts or any folder is made
    if not (_known_notebooks("run", args.only)
            and _usable("run", lambda: check_parameters(dict(args.parameters or ()), select_notebooks(args.only, args.data)))
            and _usable("run", lambda: check_output_folder(args.out if args.out is not None else output_dir()))):
        return 2
    summary = {}
    # run_notebooks opens and checks a dataset (every file's header) before it makes any folder: once
    if not _usable("run", lambda: summary.update(run_notebooks(args.profile, only=args.only, out=args.out,
                                                               timeout=args.timeout, seed=args.seed,
                                                               pretrained=not args.no_pretrained, data=args.data,
                                                               parameters=dict(args.parameters or ())))):
        return 2
    this_run = [n for n in summary["notebooks"] if n["notebook"] in summary["ran"]]
    failed = [n for n in this_run if n["status"] != "ok"]
    for n in this_run:
        print(f"{n['status']:>7}  {n['seconds']:7.1f}s  {n['notebook']}" + (f"  — {n['error']}" if n.get("error") else ""))
    for name, reasons in summary["stale"].items():  # notebooks whose inputs changed since they ran
        print(f"  stale  {name}: {reasons[0]}{' …' if len(reasons) > 1 else ''} (eyegen run --only {name[:2]})")
    print(f"report: {summary['report']}")
    return 1 if failed else 0


def _cmd_list(args) -> int:
    from ..core.profiles import resolve_profile
    from .cards import CARDS, card_text, timeout_for
    from .runner import list_notebooks

    if not _known_notebooks("list", args.only):
        return 2
    books = list_notebooks(args.only)
    profile = resolve_profile(args.profile).name
    for nb in books:
        if nb.stem not in CARDS:
            print(f"{nb.stem}\n  (no card yet: add one to eyegen_lib/suite/cards.py)\n")
            continue
        limit = timeout_for(nb.stem, profile)
        print(card_text(nb.stem) + f"\n  {'Time limit:':<11} " +
              (f"{limit / 60:.0f} min at {profile} (eyegen run --timeout overrides it)\n" if limit
               else f"none at {profile} (not timed there)\n"))
    return 0


def _cmd_train(args) -> int:
    from .train_cli import run_train

    return run_train(args)


def _cmd_check(args) -> int:
    import time

    from .check import GPU_PEAK_FLOPS, UTILISATION, checked_families, run_check

    known = checked_families()
    bad = [f for f in (args.only or []) if f not in known]
    if bad:
        print(f"eyegen check: error: unknown model {bad[0]!r}: choose from {', '.join(known)}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    rows = run_check(args.profile, only=args.only or known, max_batch=args.max_batch)
    print(f"\n{len(rows)} models in {time.perf_counter() - started:.0f} s; H100-hours: the full schedule's FLOPs at "
          f"{UTILISATION:.0%} of {GPU_PEAK_FLOPS / 1e12:.0f} TFLOP/s (dense bf16)")
    return 1 if any("error" in r for r in rows) else 0


def _cmd_claims(args) -> int:
    from ..core.paths import output_dir
    from .claims_summary import claim_rows, claims_text

    out = Path(args.out if args.out is not None else output_dir()).expanduser()
    try:
        rows = claim_rows(out, args.against.expanduser() if args.against is not None else None)
    except FileNotFoundError as exc:
        print(f"eyegen claims: error: {exc}", file=sys.stderr)
        return 2
    print(claims_text(rows, markdown=args.markdown) if rows else f"{out}: no claims recorded")
    return 0


def _cmd_report(args) -> int:
    from ..core.paths import output_dir
    from .report import build_report

    out = Path(args.out if args.out is not None else output_dir()).expanduser()
    if not (out / "metrics").is_dir() and not (out / "run_summary.json").is_file():
        print(f"eyegen report: error: {out} holds no recorded run (no metrics/ or run_summary.json): name the folder "
              "an `eyegen run --out` wrote, or run the notebooks first", file=sys.stderr)
        return 2
    print(build_report(out))
    return 0


def _cmd_env(args) -> int:
    from ..runs.environment import environment_report, format_environment

    report = environment_report()
    print(json.dumps(report, indent=2) if args.json else format_environment(report))
    return 0


def _cmd_refresh(args) -> int:
    from .runner import refresh_committed_outputs

    if not _known_notebooks("notebooks refresh", args.only):
        return 2
    for path in refresh_committed_outputs(args.only):
        print(f"refreshed {path}")
    return 0


def _cmd_cards(args) -> int:
    from .cards import refresh_cards

    for path in refresh_cards():
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ..core.profiles import DATA_SOURCES, PROFILES

    parser = _Parser(prog="eyegen", description="eyegen: eye-image synthesis papers, reproduced")
    parser.add_argument("--version", action="version", version=f"eyegen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute the notebooks headless (papermill), write metrics and report.html")
    run.add_argument("--profile", default="auto", choices=["auto", *PROFILES],
                     help="run size; auto = gpu with CUDA, else cpu; paper only when named (default: auto)")
    run.add_argument("--only", nargs="*", help="notebooks by number or name, e.g. 01 03 or dataset refiner")
    run.add_argument("--data", default=None, choices=list(DATA_SOURCES),
                     help="where the eyes come from: the renderer (default), or your copy of a paper's dataset "
                          "(its folder in $EYEGEN_OPENEDS_DIR …); runs the notebooks that take it (eyegen list)")
    run.add_argument("--seed", type=whole_number(0, option="--seed"), default=None,
                     help="every notebook's SEED (default: 0); a run with another seed trains its own models")
    run.add_argument("--out", type=Path, default=None, help="output folder (default: outputs/ in the checkout)")
    run.add_argument("--no-pretrained", action="store_true",
                     help="train every model here: take nothing from the model zoo (zoo/; default: take the zoo's "
                          "entry where one serves the run)")
    run.add_argument("--timeout", type=positive_number(option="--timeout", what="a positive number of seconds"), default=None,
                     help="seconds each notebook may run before it is stopped (default: 3× the time on its card for "
                          "this profile, at least 600; no limit where the card has no time; see eyegen list)")
    run.add_argument("--set", dest="parameters", action="append", type=notebook_parameter, default=None,
                     metavar="NAME=VALUE", help="set a notebook parameter (its value in JSON) in every notebook that has "
                     "it, e.g. --set 'ABLATIONS=[\"no_gaze\"]' or --set RETRAIN=true; repeatable")
    run.set_defaults(func=_cmd_run)

    lst = sub.add_parser("list", help="the notebooks' cards: what each reproduces, needs and makes, and its run time")
    lst.add_argument("--only", nargs="*", help="notebooks by number or name (default: all)")
    lst.add_argument("--profile", default="auto", choices=["auto", *PROFILES],
                     help="the profile whose time limit to show (default: auto)")
    lst.set_defaults(func=_cmd_list)

    from .train_cli import add_train_parser

    add_train_parser(sub)

    from .zoo_cli import add_zoo_parser

    add_zoo_parser(sub)

    chk = sub.add_parser("check", help="dry run: every notebook's models at a profile's shapes, 2 iterations each; "
                                       "parameters, s/iteration, peak RSS, FLOPs, GPU-hours")
    chk.add_argument("profile", choices=list(PROFILES), help="the profile whose shapes to check (paper: the papers')")
    chk.add_argument("--only", nargs="*", help="model families (default: all)")
    chk.add_argument("--max-batch", type=whole_number(1), default=None,
                     help="measure with at most this batch (FLOPs and GPU-hours are scaled to the full batch)")
    chk.set_defaults(func=_cmd_check)

    rep = sub.add_parser("report", help="rebuild outputs/report.html from the recorded metrics")
    rep.add_argument("--out", type=Path, default=None,
                     help="the folder an eyegen run wrote (default: outputs/ in the checkout)")
    rep.set_defaults(func=_cmd_report)

    cls = sub.add_parser("claims", help="every recorded claim in one table: state, margin, spread, and the length "
                                        "and seeds its spread was measured at")
    cls.add_argument("--out", type=Path, default=None,
                     help="the folder an eyegen run wrote (default: outputs/ in the checkout)")
    cls.add_argument("--against", type=Path, default=None,
                     help="an earlier run's folder: each claim's state and margin there, beside today's")
    cls.add_argument("--markdown", action="store_true", help="a Markdown table (for notes and issues)")
    cls.set_defaults(func=_cmd_claims)

    env = sub.add_parser("env", help="versions, device, backbone weights and datasets found")
    env.add_argument("--json", action="store_true", help="print it as JSON (for scripts)")
    env.set_defaults(func=_cmd_env)

    nbs = sub.add_parser("notebooks", help="notebook maintenance")
    nbsub = nbs.add_subparsers(dest="action", required=True)
    refresh = nbsub.add_parser("refresh", help="re-run under smoke; keep only the outputs nbval checks")
    refresh.add_argument("--only", nargs="*", help="notebooks by number or name (default: all)")
    refresh.set_defaults(func=_cmd_refresh)

    cards = nbsub.add_parser("cards", help="write each notebook's card cell and the README's table from eyegen_lib/suite/cards.py")
    cards.set_defaults(func=_cmd_cards)

    synth = sub.add_parser("synth", help="the procedural eye renderer: export its eyes in real datasets' formats")
    synthsub = synth.add_subparsers(dest="action", required=True)
    from ..science.data.export import add_export_cli

    add_export_cli(synthsub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ..core.files import WriteError

    try:
        if args.command == "train":
            return _cmd_train(args)
        if args.command == "zoo":
            from ..runs.zoo import ZooError

            try:
                return args.func(args)
            except ZooError as exc:
                print(f"eyegen zoo: error: {exc}", file=sys.stderr)
                return 2
        return args.func(args)
    except WriteError as exc:  # a full disk or an unwritable folder: one line, earlier records intact
        print(f"eyegen {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
