"""pyproject.toml, environment.yml and binder/ must install the same packages at the same versions."""
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _normalise(lines):
    out = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("-e"):
            continue
        req = Requirement(line)
        out[req.name.lower().replace("_", "-")] = str(req.specifier)
    return out


def _pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return _normalise(project["dependencies"] + project["optional-dependencies"]["test"])


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert _normalise(pip_section) == _pyproject()
    assert any(str(d).startswith("python=3.11") for d in env["dependencies"])


def test_binder_matches_pyproject():
    assert _normalise((ROOT / "binder" / "requirements.txt").read_text().splitlines()) == _pyproject()
    assert "pip install" in (ROOT / "binder" / "postBuild").read_text()


def test_torch_pair_is_pinned():
    deps = _pyproject()
    assert deps["torch"] == "==2.14.1" and deps["torchvision"] == "==0.29.1"
    for name in ["numpy", "scipy", "pillow", "matplotlib", "seaborn", "ipywidgets", "jupyterlab", "ipykernel",
                 "papermill", "nbval", "lpips", "tqdm", "pytest"]:
        assert name in deps, f"{name} missing from pyproject.toml"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = next(line.strip() for line in ci.splitlines() if "pytest" in line)
    assert test_cmd in readme, "the README's test command and .ci/run have drifted apart"
