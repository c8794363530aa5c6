"""What each notebook must have recorded after a ``smoke`` run (recommenders-style notebook tests).

Keys are notebook stems; each value checks the notebook's metrics JSON (see eyegen_lib.record).
A notebook without an entry here still runs and must record at least one metric; add an entry
when you add a notebook, so its numbers are checked, not only its execution.
"""
from __future__ import annotations


def metric(data: dict, name: str):
    assert name in data["metrics"], f"{data['notebook']} did not record {name!r} (it recorded {sorted(data['metrics'])})"
    return data["metrics"][name]["value"]


def claim(data: dict, name: str) -> dict:
    found = [c for c in data["claims"] if c["name"] == name]
    assert found, f"{data['notebook']} did not record the claim {name!r}"
    return found[0]


def check_00_setup(data: dict) -> None:
    assert data["profile"] == "smoke"
    assert metric(data, "backbone_weights_found") == 2
    assert metric(data, "lpips_identical") < 1e-6
    assert metric(data, "lpips_noisy") > 0.05
    assert str(metric(data, "torch_version")).startswith("2.14.1")


EXPECTATIONS = {
    "00_setup": check_00_setup,
}
