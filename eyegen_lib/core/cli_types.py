"""Argument types of the ``eyegen`` commands (argparse ``type=`` callables whose errors say what was
expected), apart from :mod:`eyegen_lib.suite.cli` so that every subcommand's parser (``eyegen synth export``,
``eyegen zoo``, ``eyegen train``) uses them without importing the command line itself."""
from __future__ import annotations

import argparse
import json

__all__ = ["whole_number", "positive_number", "notebook_parameter"]


def _checked_type(convert, accept, prefix: str, what: str):
    """An argparse ``type``: ``convert(text)`` that ``accept`` must pass, else ``<prefix> <what>, got …``."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{prefix} {what}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{prefix} {what}, got {value}")
        return value

    return parse


def whole_number(minimum: int = 1, *, option: str = "", what: str = ""):
    """An argparse ``type`` for a whole number ≥ ``minimum`` whose error says what was expected:
    ``argument --max-batch: takes a whole number ≥ 1, got -1``."""
    what = what or ("a non-negative integer" if minimum == 0 else f"a whole number ≥ {minimum}")
    return _checked_type(int, lambda v: v >= minimum, f"{option} takes" if option else "takes", what)


def notebook_parameter(text: str) -> tuple[str, object]:
    """An argparse ``type`` for ``NAME=VALUE`` with VALUE in JSON (``json.loads``: never evaluated as code)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"takes NAME=VALUE (a notebook parameter and its value in JSON), got {text!r}")
    try:
        return name.strip(), json.loads(value)
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(f"the value of {name.strip()} is not JSON ({value!r}): write true, 3, 0.5, "
                                         f"\"cpu\" or [\"no_gaze\"] (quote the whole argument in the shell)") from None


def positive_number(*, option: str = "", what: str = "a positive number"):
    """An argparse ``type`` for a finite number > 0 (a fraction too): ``--timeout takes a positive
    number of seconds, got 0.0``."""
    return _checked_type(float, lambda v: 0 < v < float("inf"), f"{option} takes" if option else "takes", what)
