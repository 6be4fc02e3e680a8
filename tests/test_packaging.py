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


# declared for what they run, not imported: notebook kernels and front end, pytest plugins, the type checker
NOT_IMPORTED = {"jupyterlab", "ipykernel", "ipywidgets", "nbval", "pytest-timeout", "mypy"}


def _imported_distributions() -> dict[str, set[str]]:
    """Distribution name -> files of fuselip/, app/, train/, benchmarks/, tests/ and notebooks/ that import it."""
    import ast
    import json
    import sys
    from importlib.metadata import packages_distributions
    owners = packages_distributions()  # top-level module -> the distributions that install it
    sources = [p for d in ("fuselip", "app", "train", "benchmarks", "tests") for p in (ROOT / d).rglob("*.py")]
    texts = [(p, p.read_text()) for p in sources]
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(notebook.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        texts.append((notebook, "\n".join(l for l in code.splitlines() if not l.lstrip().startswith(("%", "!")))))
    found: dict[str, set[str]] = {}
    for path, text in texts:
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top not in owners:
                    continue  # the standard library, or modules of this repository (app, test helpers)
                for dist in set(owners[top]) - {"fuselip"}:  # this project, installed editable
                    found.setdefault(_name(dist), set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_import_is_declared_and_every_declaration_imported():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(s) for s in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        declared |= {_name(s) for s in extra}
    imported = _imported_distributions()
    undeclared = {d: sorted(files)[:3] for d, files in imported.items() if d not in declared}
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
    unused = declared - set(imported) - NOT_IMPORTED
    assert not unused, f"declared in pyproject.toml but imported nowhere: {sorted(unused)}"
