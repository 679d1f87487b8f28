"""The container recipes: containers/Dockerfile, containers/vaebin-rs.def and the local build.

The static checks always run. The build-and-run checks need podman and an opt-in
(`VAEBIN_CONTAINER_TESTS=1`): they build the image with containers/build-local.sh (about
15 minutes from nothing, seconds when the layers are cached) and run it.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from project_version import python_version

import vaebin
from vaebin import features

tomllib = pytest.importorskip("tomllib", reason="reads pyproject.toml with Python >= 3.11")

ROOT = Path(__file__).resolve().parents[1]
CONTAINERS = ROOT / "containers"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
VERSION = python_version()  # Cargo.toml's, through maturin


# --- Dockerfile ---------------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arguments for instruction, arguments in self.instructions if instruction == keyword]

    def args(self) -> dict[str, str | None]:
        return dict(_split_arg(arguments) for arguments in self.all("ARG"))


def _split_arg(arguments: str) -> tuple[str, str | None]:
    name, equals, default = arguments.partition("=")
    return name.strip(), default.strip().strip('"') if equals else None


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    instructions = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        joined = (pending + stripped).strip()
        pending = ""
        if joined:
            keyword, _, arguments = joined.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    assert not pending, "Dockerfile ends inside a continued instruction"
    return instructions


def dockerfile() -> tuple[dict[str, str | None], list[Stage]]:
    """Global build arguments (before the first FROM) and the stages in order."""
    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    for keyword, arguments in dockerfile_instructions((CONTAINERS / "Dockerfile").read_text()):
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", arguments, flags=re.IGNORECASE)
            assert match, f"every stage is named: FROM {arguments}"
            stages.append(Stage(base=match[1], name=match[2]))
        elif not stages:
            assert keyword == "ARG", f"only ARG may come before the first FROM, not {keyword}"
            global_args.update([_split_arg(arguments)])
        else:
            stages[-1].instructions.append((keyword, arguments))
    return global_args, stages


def stage(name: str) -> Stage:
    return next(stage for stage in dockerfile()[1] if stage.name == name)


def torch_requirement() -> str:
    return next(spec for spec in PYPROJECT["dependencies"] if re.match(r"torch\b", spec))


def test_base_images_are_build_arguments_defaulting_to_public_images() -> None:
    global_args, stages = dockerfile()
    assert global_args["BUILDER_IMAGE"] == "docker.io/library/rust:1-bookworm"
    assert global_args["RUNTIME_IMAGE"] == "docker.io/library/python:3.11-slim-bookworm"
    assert [(stage.name, stage.base) for stage in stages[:2]] == [
        ("builder", "${BUILDER_IMAGE}"),
        ("runtime-base", "${RUNTIME_IMAGE}"),
    ]
    # Every other stage starts from one of the file's own stages, never from another registry.
    names = {stage.name for stage in stages}
    for later in stages[2:]:
        assert later.base.replace("${TORCH_VARIANT}", "cpu") in names


def test_final_stage_is_chosen_by_the_torch_variant() -> None:
    global_args, stages = dockerfile()
    assert global_args["TORCH_VARIANT"] == "cpu"
    final = stages[-1]
    assert (final.name, final.base) == ("runtime", "runtime-${TORCH_VARIANT}")
    for variant in ("cpu", "cuda"):
        assert stage(f"runtime-{variant}").base == "runtime-base"
    assert "NVIDIA_VISIBLE_DEVICES=all" in " ".join(stage("runtime-cuda").all("ENV"))
    assert not stage("runtime-cpu").all("ENV")


def test_torch_comes_from_the_cpu_index_or_pypi_and_nothing_else() -> None:
    runtime = stage("runtime-base")
    assert runtime.args()["TORCH_SPEC"] == torch_requirement()
    assert runtime.args()["TORCH_CPU_INDEX"] == "https://download.pytorch.org/whl/cpu"
    install = next(run for run in runtime.all("RUN") if "TORCH_VARIANT" in run)
    assert re.search(
        r'cpu\) pip install --index-url "\$\{TORCH_CPU_INDEX\}" "\$\{TORCH_SPEC\}"', install
    )
    assert runtime.args()["TORCH_CUDA_INDEX"] == "", "the cuda variant defaults to PyPI"
    assert re.search(
        r'cuda\) pip install \$\{TORCH_CUDA_INDEX:\+--index-url "\$\{TORCH_CUDA_INDEX\}"\} '
        r'"\$\{TORCH_SPEC\}"',
        install,
    )
    assert re.search(r"\*\).*exit 1", install), "an unknown variant must fail the build"


def test_torch_is_installed_before_the_package_so_its_layer_survives_source_changes() -> None:
    runs = [arguments for keyword, arguments in stage("runtime-base").instructions]
    torch_at = next(i for i, run in enumerate(runs) if "TORCH_SPEC" in run)
    requirements_at = next(i for i, run in enumerate(runs) if "pip install -r" in run)
    wheel_at = next(i for i, run in enumerate(runs) if run.startswith("--from=builder"))
    assert torch_at < requirements_at < wheel_at


def test_builder_makes_one_release_abi3_wheel_with_maturin() -> None:
    builder = stage("builder")
    build = next(run for run in builder.all("RUN") if "maturin build" in run)
    assert "--release" in build and "--locked" in build and "--out /wheels" in build
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    assert any(feature.startswith("abi3") for feature in cargo["dependencies"]["pyo3"]["features"])
    copies = " ".join(builder.all("COPY"))
    for needed in ("Cargo.toml", "Cargo.lock", "pyproject.toml", "README.md", "rust", "python"):
        assert re.search(rf"(^|\s){re.escape(needed)}(\s|$)", copies), needed


def test_runtime_suits_nextflow_and_any_user() -> None:
    _, stages = dockerfile()
    keywords = {keyword for stage in stages for keyword, _ in stage.instructions}
    # Nextflow runs its own shell command in the container; Singularity ignores USER.
    assert "ENTRYPOINT" not in keywords
    assert "HEALTHCHECK" not in keywords
    assert "USER" not in keywords
    runtime = stage("runtime-base")
    assert any(re.search(r"apt-get install .*\bprocps\b", run) for run in runtime.all("RUN"))
    environment = " ".join(runtime.all("ENV"))
    assert "PATH=/opt/vaebin/bin:$PATH" in environment
    for cache in ("NUMBA_CACHE_DIR", "MPLCONFIGDIR"):
        assert re.search(rf"{cache}=/tmp/\S+", environment), cache
    assert stages[-1].all("CMD") == ['["vaebin-rs", "--help"]']


def test_labels_follow_the_oci_annotations_and_the_package_version() -> None:
    final = stage("runtime")
    assert final.args()["VAEBIN_VERSION"] == VERSION
    labels = dict(re.findall(r'(\S+)="([^"]*)"', " ".join(final.all("LABEL"))))
    assert labels["org.opencontainers.image.title"] == "vaebin-rs"
    assert labels["org.opencontainers.image.version"] == "${VAEBIN_VERSION}"
    assert labels["org.opencontainers.image.licenses"] == PYPROJECT["license"]["text"]
    assert labels["org.opencontainers.image.revision"] == "${VCS_REF}"
    assert labels["org.opencontainers.image.description"] == PYPROJECT["description"]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        if re.fullmatch(rf"{regex}(/.*)?", path):
            ignored = not negated
    return ignored


def test_build_context_holds_the_sources_and_nothing_heavy() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for needed in ("Cargo.toml", "Cargo.lock", "pyproject.toml", "README.md", "rust/src/lib.rs"):
        assert not _ignored(needed, patterns), needed
    assert not _ignored("python/vaebin/cli.py", patterns)
    for heavy in (
        ".venv/bin/python",
        "target/release/x",
        ".git/HEAD",
        "python/vaebin/_core.abi3.so",
    ):
        assert _ignored(heavy, patterns), heavy


def test_local_build_passes_only_arguments_the_dockerfile_declares() -> None:
    script = (CONTAINERS / "build-local.sh").read_text()
    passed = set(re.findall(r"--build-arg ([A-Z_]+)=", script))
    global_args, stages = dockerfile()
    declared = set(global_args) | {name for stage in stages for name in stage.args()}
    assert {"BUILDER_IMAGE", "RUNTIME_IMAGE", "TORCH_VARIANT", "VAEBIN_VERSION"} <= passed
    assert passed <= declared


@pytest.mark.parametrize(
    "script",
    [
        "containers/build-local.sh",
        ".ci/install-containers.sh",
        ".ci/install-slurm.sh",
        ".ci/install-apptainer.sh",
    ],
)
def test_shell_scripts_parse(script: str) -> None:
    path = ROOT / script
    assert os.access(path, os.X_OK), f"{script} is not executable"
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    if shutil.which("shellcheck"):
        lint = subprocess.run(
            ["shellcheck", str(path)], capture_output=True, text=True, check=False
        )
        assert lint.returncode == 0, lint.stdout


# --- Apptainer / Singularity definition file ----------------------------------------------------

# From Apptainer's own parser (pkg/build/types/parser/deffile.go) and its bootstrap agents.
DEF_SECTIONS = {
    "help", "setup", "files", "labels", "environment", "pre", "post", "runscript", "test",
    "startscript", "arguments",
}  # fmt: skip
DEF_HEADERS = {"bootstrap", "from", "registry", "namespace", "stage", "includecmd", "mirrorurl"}
BOOTSTRAP_AGENTS = {
    "docker", "docker-archive", "docker-daemon", "oci", "oci-archive", "library", "localimage",
    "shub", "oras", "debootstrap", "yum", "zypper", "busybox", "scratch", "arch",
}  # fmt: skip


def definition() -> tuple[dict[str, str], dict[str, list[str]]]:
    """Header keywords and sections' lines, read the way Apptainer reads a definition file."""
    header: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in (CONTAINERS / "vaebin-rs.def").read_text().splitlines():
        words = line.split()
        if words and words[0].startswith("%"):
            name = words[0][1:].lower()
            assert name in DEF_SECTIONS, f"unknown section %{name}"
            assert name not in sections, f"section %{name} appears twice"
            current = sections[name] = []
        elif current is not None:
            current.append(line)
        elif words and not words[0].startswith("#"):
            key, colon, value = line.partition(":")
            assert colon, f"header line without a colon: {line!r}"
            assert key.strip().lower() in DEF_HEADERS, f"unknown header {key!r}"
            header[key.strip().lower()] = value.split("#")[0].strip()
    return header, sections


def _body(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_definition_starts_from_the_docker_image() -> None:
    header, sections = definition()
    assert header["bootstrap"] in BOOTSTRAP_AGENTS
    assert header["bootstrap"] == "docker-archive"
    # Every {{ name }} needs a default in %arguments.
    arguments = dict(line.split("=", 1) for line in _body(sections["arguments"]))
    text = (CONTAINERS / "vaebin-rs.def").read_text()
    used = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", text))
    assert used and used <= set(arguments)
    assert header["from"] == "{{ ARCHIVE }}" and arguments["ARCHIVE"] == "vaebin-rs.tar"


def test_definition_runs_the_tool_and_tests_it() -> None:
    _, sections = definition()
    assert _body(sections["runscript"]) == ['exec vaebin-rs "$@"']
    test_body = _body(sections["test"])
    assert test_body[0] == "set -e"
    assert "vaebin-rs --version" in test_body
    labels = dict(line.split(None, 1) for line in _body(sections["labels"]))
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.title"] == "vaebin-rs"
    assert _body(sections["help"])


def test_containers_readme_gives_both_apptainer_routes() -> None:
    text = (CONTAINERS / "README.md").read_text()
    assert "podman save --format docker-archive -o vaebin-rs.tar" in text
    assert "apptainer build vaebin-rs.sif docker-archive://vaebin-rs.tar" in text
    assert re.search(r"apptainer build \S+\.sif docker://\S+", text)
    assert "apptainer build vaebin-rs.sif containers/vaebin-rs.def" in text
    # the command tests/test_apptainer.py runs (MKSQUASHFS_ARGS there)
    assert '--mksquashfs-args "-comp zstd -Xcompression-level 3"' in text


# --- Build and run (podman, opt-in) -------------------------------------------------------------

PODMAN = shutil.which("podman")
needs_podman = pytest.mark.skipif(
    PODMAN is None or os.environ.get("VAEBIN_CONTAINER_TESTS") != "1",
    reason="builds the image with podman; set VAEBIN_CONTAINER_TESTS=1 (about 15 min from nothing)",
)
IMAGE = f"localhost/vaebin-rs:{VERSION}"


@pytest.fixture(scope="module")
def image() -> str:
    build = subprocess.run(
        [str(CONTAINERS / "build-local.sh")], capture_output=True, text=True, check=False
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return IMAGE


def podman_run(
    image: str, *command: str, options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PODMAN), "run", "--rm", "--network", "none", *options, image, *command],
        capture_output=True,
        text=True,
        check=False,
    )


@needs_podman
def test_image_reports_the_package_and_core_versions(image: str) -> None:
    result = podman_run(image, "vaebin-rs", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"vaebin-rs {vaebin.__version__} (core {vaebin.core_version})"


@needs_podman
def test_image_featurizes_as_an_unprivileged_user(image: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)
    contigs = data / "asm.fna.gz"
    contigs.write_bytes(gzip.compress(b">c1 first\nACGTACGTAAACGGT\nTTGCA\n>c2\nggccattaNNacgt\n"))
    contigs.chmod(0o644)
    result = podman_run(
        image,
        "vaebin-rs", "featurize", "--contigs", "/data/asm.fna.gz", "--outdir", "/data/out",
        options=("--user", "1000:1000", "--volume", f"{data}:/data"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    matrix = np.load(data / "out" / "composition.npy")
    np.testing.assert_array_equal(matrix, features.composition(contigs, k=4).matrix)
    assert (data / "out" / "contigs.tsv").read_text() == "name\tlength\nc1\t20\nc2\t14\n"


@needs_podman
def test_image_reports_bad_input_in_one_line(image: str) -> None:
    result = podman_run(
        image, "vaebin-rs", "featurize", "--contigs", "/no/such.fa", "--outdir", "/tmp/o"
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "/no/such.fa" in result.stderr


@needs_podman
def test_image_has_what_nextflow_needs(image: str) -> None:
    # Nextflow starts `bash -c` with a command of its own and samples `ps` for task metrics.
    result = podman_run(image, "bash", "-c", "ps -o comm= -p $$ && command -v vaebin-rs")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["bash", "/opt/vaebin/bin/vaebin-rs"]
    # Libraries that cache under $HOME must work for a user without one (HOME=/ under `-u`).
    imports = podman_run(
        image, "python", "-c", "import hdbscan, pysam, torch, umap, vaebin",
        options=("--user", "4242:4242"),
    )  # fmt: skip
    assert imports.returncode == 0, imports.stderr


@needs_podman
def test_image_metadata(image: str) -> None:
    inspect = subprocess.run(
        [str(PODMAN), "image", "inspect", image], capture_output=True, text=True, check=True
    )
    config = json.loads(inspect.stdout)[0]["Config"]
    assert not config.get("Entrypoint")
    assert "Healthcheck" not in config
    assert config["Labels"]["org.opencontainers.image.version"] == VERSION
    assert config["Labels"]["vaebin.torch-variant"] in {"cpu", "cuda"}
