"""Packaging: the wheel and sdist maturin builds, and the bioconda recipe in recipe/.

The recipe and module checks always run: the recipe is rendered with Jinja2 (as conda-build does,
with stand-ins for conda-build's own functions) and parsed, like environment.yml, by the YAML
parser bundled with Nextflow (groovy-yaml; PyYAML is no dependency). Building and installing need
an opt-in (`VAEBIN_PACKAGING_TESTS=1`, set by .ci/run, which builds the wheel and the sdist into
dist/ and passes it as `VAEBIN_DIST_DIR`; without it the test builds them itself, a few minutes):
the wheel goes into a fresh virtual environment with no Rust on PATH and runs `vaebin-rs demo`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import jinja2
import pytest
from project_version import python_version

tomllib = pytest.importorskip("tomllib", reason="reads pyproject.toml with Python >= 3.11")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
# The package's version as maturin writes it (Cargo.toml's, PEP 440 form): the sdist and wheel
# names, the recipe's and the conda pins' version, the biocontainers tags.
VERSION = python_version()
RECIPE = ROOT / "recipe"
MODULES_DIR = ROOT / "nextflow" / "modules" / "local" / "vaebin"
MODULES = sorted(path.parent.name for path in MODULES_DIR.glob("*/main.nf"))
SDIST = f"vaebin_rs-{VERSION}.tar.gz"  # maturin's name: the project name normalized (PEP 625)
# PyPI names whose conda-forge/bioconda package is named otherwise.
CONDA_NAMES = {"torch": "pytorch"}
# The build string bioconda gives the package, in the biocontainers image tags.
BIOCONTAINERS_BUILD = "0"


def conda_spec(requirement: str) -> str:
    """`numpy>=1.24` (PEP 508) -> `numpy >=1.24` (conda), under the conda package's name."""
    match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*([<>=!~].*)?", requirement)
    assert match, f"unexpected requirement {requirement!r}"
    name, spec = match.group(1).lower(), (match.group(2) or "").replace(" ", "")
    return f"{CONDA_NAMES.get(name, name)} {spec}".strip()


def render_recipe() -> str:
    """meta.yaml through Jinja2, with stand-ins for compiler() and pin_subpackage()."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    template = environment.from_string((RECIPE / "meta.yaml").read_text())
    return template.render(
        compiler=lambda language: f"compiler({language})",
        pin_subpackage=lambda name, max_pin=None: f"pin_subpackage({name}, max_pin={max_pin})",
    )


@pytest.fixture(scope="module")
def parsed_yaml(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The rendered recipe and every module's environment.yml, parsed by groovy-yaml."""
    if shutil.which("java") is None:
        pytest.skip("java is not installed (the YAML parser is Nextflow's)")
    installer = subprocess.run(
        ["bash", str(ROOT / ".ci" / "install-nextflow.sh")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "CI": "true"},
        stdin=subprocess.DEVNULL,
    )
    assert installer.returncode == 0, installer.stderr
    nextflow = Path(installer.stdout.strip().splitlines()[-1]) / "nextflow"
    lib_dirs = sorted(nextflow.resolve().parent.parent.glob("nextflow-*/lib"))
    assert lib_dirs, f"no Nextflow lib folder beside {nextflow}"
    rendered = tmp_path_factory.mktemp("recipe") / "meta.yaml"
    rendered.write_text(render_recipe())
    files = {"recipe": rendered}
    files.update({module: MODULES_DIR / module / "environment.yml" for module in MODULES})
    script = textwrap.dedent(
        """
        import groovy.json.JsonOutput
        import groovy.yaml.YamlSlurper
        def slurper = new YamlSlurper()
        println JsonOutput.toJson(args.collect { path -> slurper.parse(new File(path)) })
        """
    )
    result = subprocess.run(
        ["java", "-cp", f"{lib_dirs[-1]}/*", "groovy.ui.GroovyMain", "-e", script]
        + [str(path) for path in files.values()],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    parsed = json.loads(next(line for line in result.stdout.splitlines() if line[:1] == "["))
    return dict(zip(files, parsed, strict=True))


# --- The recipe -----------------------------------------------------------------------------------


def test_recipe_version_is_set_once_at_the_top() -> None:
    first = (RECIPE / "meta.yaml").read_text().splitlines()[0]
    assert first == f'{{% set version = "{VERSION}" %}}'


def test_recipe_follows_pyproject(parsed_yaml: dict) -> None:
    recipe = parsed_yaml["recipe"]
    assert recipe["package"] == {"name": PROJECT["name"], "version": VERSION}
    requirements = recipe["requirements"]
    assert requirements["run"] == [f"python {PROJECT['requires-python']}"] + [
        conda_spec(dependency) for dependency in PROJECT["dependencies"]
    ]
    # Built from the sdist with maturin, the backend pyproject names, and a Rust compiler.
    (backend,) = PYPROJECT["build-system"]["requires"]
    assert requirements["host"] == ["python", "pip", conda_spec(backend)]
    assert "compiler(rust)" in requirements["build"]
    assert recipe["source"]["url"] == (f"https://pypi.org/packages/source/v/vaebin-rs/{SDIST}")
    assert recipe["build"]["run_exports"] == ["pin_subpackage(vaebin-rs, max_pin=x.x)"]
    assert recipe["test"] == {
        "imports": ["vaebin", "vaebin._core"],
        "commands": ["vaebin-rs --version", "vaebin-rs --help"],
    }
    assert recipe["about"]["license"] == PROJECT["license"]["text"]
    assert "LICENSE" in recipe["about"]["license_file"]
    assert (ROOT / "LICENSE").read_text().startswith(f"{PROJECT['license']['text']} License\n")
    assert recipe["about"]["summary"] == PROJECT["description"]


def test_recipe_build_script_installs_the_sdist_with_pip_and_maturin() -> None:
    script = RECIPE / "build.sh"
    assert os.access(script, os.X_OK)
    lines = script.read_text().splitlines()
    assert '"${PYTHON}" -m pip install . -vv --no-deps --no-build-isolation' in lines
    assert "set -euxo pipefail" in lines


@pytest.mark.parametrize("module", MODULES)
def test_module_environment_names_the_bioconda_package(parsed_yaml: dict, module: str) -> None:
    assert parsed_yaml[module] == {
        "channels": ["conda-forge", "bioconda"],
        "dependencies": [f"bioconda::vaebin-rs={VERSION}"],
    }


@pytest.mark.parametrize("module", MODULES)
def test_module_container_defaults_to_the_biocontainers_images(module: str) -> None:
    text = (MODULES_DIR / module / "main.nf").read_text()
    tag = f"vaebin-rs:{VERSION}--{BIOCONTAINERS_BUILD}"
    images = re.findall(r"'((?:https|biocontainers)[^']*)'", text)
    assert images == [f"https://depot.galaxyproject.org/singularity/{tag}", f"biocontainers/{tag}"]
    assert "workflow.containerEngine in ['singularity', 'apptainer']" in text
    assert "!task.ext.singularity_pull_docker_container" in text


# --- Built and installed (opt-in) -----------------------------------------------------------------

needs_opt_in = pytest.mark.skipif(
    os.environ.get("VAEBIN_PACKAGING_TESTS") != "1",
    reason="builds the wheel and installs it with torch in a fresh venv; "
    "set VAEBIN_PACKAGING_TESTS=1 (.ci/run does)",
)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder with the wheel and the sdist: $VAEBIN_DIST_DIR, else built here."""
    given = os.environ.get("VAEBIN_DIST_DIR")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("dist")
    maturin = Path(sys.executable).parent / "maturin"
    for command in (["build", "--release"], ["sdist"]):
        built = subprocess.run(
            [str(maturin), *command, "--out", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert built.returncode == 0, built.stderr[-3000:]
    return out


@needs_opt_in
def test_sdist_holds_what_a_source_build_needs_and_nothing_big(dist: Path) -> None:
    sdist = dist / SDIST
    assert sdist.is_file(), sorted(p.name for p in dist.iterdir())
    with tarfile.open(sdist) as archive:
        members = {m.name.removeprefix(f"vaebin_rs-{VERSION}/"): m for m in archive.getmembers()}
    files = {name for name, member in members.items() if member.isfile()}
    tracked = subprocess.run(
        ["git", "ls-files", "rust/src", "python/vaebin"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert tracked and set(tracked) <= files
    assert {"Cargo.toml", "Cargo.lock", "pyproject.toml", "README.md", "LICENSE"} <= files
    for folder in ("target/", "benchmarks/", "tests/", "nextflow/", "containers/", "recipe/"):
        assert not [name for name in files if name.startswith(folder)], folder
    assert not [name for name in files if name.endswith(".so")]
    assert max(members[name].size for name in files) < 1_000_000
    assert sdist.stat().st_size < 1_000_000


@needs_opt_in
def test_wheel_installs_and_runs_the_demo_without_rust(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob(f"vaebin_rs-{VERSION}-cp310-abi3-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    try:
        # PATH without any folder holding Rust's tools (~/.cargo/bin), the venv first.
        rust_tools = ("cargo", "rustc", "rustup")
        kept = [
            folder
            for folder in os.environ.get("PATH", "").split(os.pathsep)
            if folder and not any((Path(folder) / tool).exists() for tool in rust_tools)
        ]
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"PYTHONPATH", "VIRTUAL_ENV", "CARGO_HOME", "RUSTUP_HOME"}
        }
        env["PATH"] = os.pathsep.join([str(venv / "bin"), *kept])
        no_rust = subprocess.run(
            ["bash", "-c", "command -v cargo rustc rustup"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert no_rust.returncode != 0 and no_rust.stdout == "", no_rust.stdout

        # Dependencies from PyPI (torch from pip's cache when it holds it).
        install = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=1200,
        )
        assert install.returncode == 0, install.stderr[-3000:]

        where = subprocess.run(
            ["python", "-c", "import vaebin, vaebin._core; print(vaebin._core.__file__)"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
        version = subprocess.run(
            ["vaebin-rs", "--version"], env=env, capture_output=True, text=True, check=False
        )
        assert version.returncode == 0, version.stderr
        assert version.stdout.startswith(f"vaebin-rs {VERSION} (core "), version.stdout

        demo = subprocess.run(
            ["vaebin-rs", "demo", "--outdir", str(tmp_path / "demo"), "--threads", "2"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
            timeout=1200,
        )
        assert demo.returncode == 0, demo.stderr[-3000:]
        summary = re.search(
            r"^genomes: 12  bins: \d+  near-complete \([^)]*\): (\d+) ", demo.stdout, re.M
        )
        assert summary, demo.stdout
        assert int(summary.group(1)) >= 8, demo.stdout  # 12 of 12 with torch 2.x here
        assert len(re.findall(r"^genome\d\d ", demo.stdout, flags=re.M)) == 12, demo.stdout
    finally:
        shutil.rmtree(venv, ignore_errors=True)
