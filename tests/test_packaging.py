"""environment.yml (conda) and pyproject.toml (pip) must install the same packages (no conda here to try it)."""
import re
import tomllib
from pathlib import Path

import yaml
from rattler import MatchSpec

ROOT = Path(__file__).resolve().parents[1]


def _name(spec: str) -> str:
    return re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower().replace("_", "-")


def test_environment_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        pip_specs += extra
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_specs = [d for d in env["dependencies"] if isinstance(d, str)]
    for spec in conda_specs:
        MatchSpec(spec)  # each conda spec parses
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_specs = [s for s in pip_section if not s.startswith("-e")]
    assert sorted(map(_name, env_specs)) == sorted(map(_name, pip_specs))
    assert sorted(env_specs, key=_name) == sorted(pip_specs, key=_name), "version bounds differ"
    assert "-e ." in pip_section and any(d.startswith("python") for d in conda_specs)


def test_ci_runs_make_test_only():
    run = (ROOT / ".ci" / "run").read_text()
    assert [l for l in run.splitlines() if l and not l.startswith("#") and not l.startswith("set ")
            and not l.startswith("cd ")] == ["make test"]
    readme = (ROOT / "README.md").read_text()
    first_commands = re.findall(r"^make \w+", readme, flags=re.M)[:2]
    assert first_commands == ["make app", "make test"]
