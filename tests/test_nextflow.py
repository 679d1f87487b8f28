"""Nextflow: what nf-test cannot check. The module and pipeline tests are nf-tests.

`cd nextflow && nf-test test` runs `modules/local/vaebin/*/tests/main.nf.test` and
`tests/main.nf.test` (real runs on the toy data set of `vaebin-rs simulate --preset toy --seed 1`,
stub runs, snapshots); .ci/run runs it. Here: the Nextflow installer, meta.yml against main.nf,
the module anatomy, the stubs' formats (GPU device switch and mixed FASTA/FASTQ included, without a
GPU), -resume, the samplesheet and parameter checks, the modules' tables against the CLI's own on
the same BAMs, the long-read pipeline on a samplesheet the CLI simulates, and the images and
`docker run` options each task gets under -profile docker,gpu.

Skipped only where java is missing; the Nextflow jars are installed by .ci/install-nextflow.sh
into ${VAEBIN_CACHE:-~/.cache/vaebin} on first use.
"""

from __future__ import annotations

import csv
import fnmatch
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from project_version import python_version, source_version

REPO = Path(__file__).resolve().parents[1]
NEXTFLOW_DIR = REPO / "nextflow"
MODULES_DIR = NEXTFLOW_DIR / "modules" / "local" / "vaebin"
INSTALLER = REPO / ".ci" / "install-nextflow.sh"
MODULES = ["coverage", "mergedepths", "bin", "binreads", "simulate"]
NEXTFLOW_VERSION = "24.10.0"
# What `vaebin-rs --version` reports, hence what the modules' versions outputs carry.
VERSION = python_version()
# The modules' default image (bioconda's package in biocontainers, tagged with the conda/PEP 440
# version) and the tag containers/build-local.sh gives the local build (Cargo's version).
BIOCONTAINER = f"biocontainers/vaebin-rs:{VERSION}--0"
LOCAL_IMAGE = f"localhost/vaebin-rs:{source_version()}"

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="java is not installed")


# --------------------------------------------------------------------------------------------
# Running things
# --------------------------------------------------------------------------------------------


def _run_installer(**extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CI": "true", **extra_env}
    return subprocess.run(
        ["bash", str(INSTALLER)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="session")
def nextflow() -> Path:
    """The `nextflow` wrapper, installed by the installer if it is not there yet."""
    result = _run_installer()
    assert result.returncode == 0, f"installer failed:\n{result.stdout}\n{result.stderr}"
    wrapper = Path(result.stdout.strip().splitlines()[-1]) / "nextflow"
    assert wrapper.is_file() and os.access(wrapper, os.X_OK)
    return wrapper


def _cli_path() -> Path | None:
    """The `vaebin-rs` console script: next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "vaebin-rs"
    if beside.is_file():
        return beside
    found = shutil.which("vaebin-rs")
    return Path(found) if found else None


@pytest.fixture(scope="session")
def vaebin_cli() -> Path:
    """The `vaebin-rs` CLI the modules call; a test that needs it fails (not skips) without it."""
    cli = _cli_path()
    if cli is None:
        pytest.fail("the `vaebin-rs` command is not installed (pip install -e . / maturin develop)")
    version = subprocess.run([cli, "--version"], capture_output=True, text=True, check=False)
    if version.returncode != 0 or not version.stdout.startswith("vaebin-rs "):
        pytest.fail(f"`vaebin-rs --version` failed: {version.stdout}{version.stderr}")
    return cli


def _require_commands(cli: Path, *commands: str) -> None:
    """Fail clearly when the CLI lacks a subcommand a module calls."""
    result = subprocess.run([cli, "--help"], capture_output=True, text=True, check=False)
    listed = re.findall(r"^  ([a-z][a-z-]*)\s", result.stdout.split("Commands:")[-1], flags=re.M)
    missing = [command for command in commands if command not in listed]
    if missing:
        pytest.fail(
            f"`vaebin-rs` lacks the command(s) {', '.join(missing)} that the Nextflow modules "
            f"call (it has: {', '.join(listed) or 'none'})"
        )


def _task_env(cli: Path | None, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of Nextflow and so of its local tasks: the CLI's folder first on PATH."""
    env = {**os.environ, **(extra_env or {})}
    if cli is not None:
        env["PATH"] = f"{cli.parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("NXF_WORK", None)
    env["NXF_ANSI_LOG"] = "false"
    return env


def run_nextflow(
    nextflow: Path,
    cwd: Path,
    script: Path,
    *args: str,
    cli: Path | None = None,
    expect_success: bool = True,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`nextflow run` with its work dir, cache and log under `cwd`."""
    command = [
        str(nextflow),
        "-log",
        str(cwd / ".nextflow.log"),
        "run",
        str(script),
        "-work-dir",
        str(cwd / "work"),
        "-ansi-log",
        "false",
        *args,
    ]
    result = subprocess.run(
        command,
        cwd=cwd,
        env=_task_env(cli, extra_env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if expect_success and result.returncode != 0:
        log = (
            (cwd / ".nextflow.log").read_text()[-4000:] if (cwd / ".nextflow.log").exists() else ""
        )
        pytest.fail(
            f"nextflow failed ({result.returncode}): {' '.join(command)}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-2000:]}\n"
            f"--- log\n{log}"
        )
    return result


def read_trace(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


# Small resource caps: process_high asks for 12 CPUs, which the local executor refuses on a
# smaller machine.
TEST_CONFIG = """
process {
    resourceLimits = [
        cpus: Math.min(2, Runtime.runtime.availableProcessors()), memory: 4.GB, time: 1.h
    ]
}
"""


# --------------------------------------------------------------------------------------------
# Installer
# --------------------------------------------------------------------------------------------


def test_installer_second_run_is_a_noop_and_wrapper_fixes_resume(nextflow: Path) -> None:
    before = nextflow.stat().st_mtime_ns
    result = _run_installer()
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == nextflow.parent
    assert "resolving" not in result.stderr  # nothing downloaded again
    assert nextflow.stat().st_mtime_ns == before  # wrapper left as it was
    wrapper = nextflow.read_text()
    # Kryo writes the resume cache by reflection into java.util; without this it cannot.
    assert "--add-opens=java.base/java.util=ALL-UNNAMED" in wrapper
    assert "NXF_OFFLINE" in wrapper
    version = subprocess.run(
        [nextflow, "-version"], capture_output=True, text=True, check=False, timeout=120
    )
    assert version.returncode == 0, version.stderr
    assert f"version {NEXTFLOW_VERSION}" in version.stdout


# --------------------------------------------------------------------------------------------
# meta.yml against main.nf, nf-core lint style
# --------------------------------------------------------------------------------------------


def _split_top_level(text: str, separator: str = ",") -> list[str]:
    """Split at separators outside quotes, parentheses and brackets."""
    parts, depth, quote, current = [], 0, "", []
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            current.append(char)
            if char == "\\" and index + 1 < len(text):
                current.append(text[index + 1])
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
            current.append(char)
        elif char in "([{":
            depth += 1
            current.append(char)
        elif char in ")]}":
            depth -= 1
            current.append(char)
        elif char == separator and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        index += 1
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _element_name(element: str) -> tuple[str, str]:
    """`path("${prefix}.tsv", stageAs: 'x/*')` -> ('path', '${prefix}.tsv')."""
    match = re.fullmatch(r"(\w+)\s*\((.*)\)", element.strip(), flags=re.S)
    assert match, f"cannot parse declaration element {element!r}"
    kind, arguments = match.groups()
    return kind, _unquote(_split_top_level(arguments)[0])


def _block(text: str, start: str, ends: tuple[str, ...]) -> list[str]:
    """Declaration lines between `start:` and the next of `ends`, comments dropped."""
    lines = text.splitlines()
    begin = next(i for i, line in enumerate(lines) if line.strip() == f"{start}:")
    declarations = []
    for line in lines[begin + 1 :]:
        stripped = line.strip()
        if stripped.rstrip(":") in ends and stripped.endswith(":"):
            break
        if stripped and not stripped.startswith("//"):
            declarations.append(stripped)
    return declarations


def parse_process(main_nf: Path) -> dict:
    """Name, input channels (element names) and outputs (emit -> element names) of a module."""
    text = main_nf.read_text()
    name = re.search(r"^process\s+(\w+)\s*\{", text, flags=re.M).group(1)
    inputs = []
    for line in _block(text, "input", ("output",)):
        body = line[len("tuple ") :] if line.startswith("tuple ") else line
        inputs.append([_element_name(element)[1] for element in _split_top_level(body)])
    outputs = {}
    for line in _block(text, "output", ("when", "script", "exec", "shell")):
        body = line[len("tuple ") :] if line.startswith("tuple ") else line
        elements, options = [], {}
        for part in _split_top_level(body):
            option = re.fullmatch(r"(\w+)\s*:\s*(.+)", part, flags=re.S)
            if option and "(" not in option.group(1):
                options[option.group(1)] = _unquote(option.group(2))
            else:
                elements.append(_element_name(part))
        assert "emit" in options, f"{main_nf}: output without emit: {line}"
        outputs[options["emit"]] = {
            "elements": [element for _, element in elements],
            "kinds": [kind for kind, _ in elements],
            "optional": options.get("optional") == "true",
            "topic": options.get("topic"),
        }
    return {"name": name, "inputs": inputs, "outputs": outputs, "text": text}


@pytest.fixture(scope="session")
def meta_yml(nextflow: Path) -> dict[str, dict]:
    """Every module's meta.yml, parsed by the YAML parser bundled with Nextflow (groovy-yaml)."""
    lib_dir = nextflow.parent.parent / f"nextflow-{NEXTFLOW_VERSION}" / "lib"
    script = textwrap.dedent(
        """
        import groovy.json.JsonOutput
        import groovy.yaml.YamlSlurper
        def slurper = new YamlSlurper()
        def parsed = args.collectEntries { path -> [ path, slurper.parse(new File(path)) ] }
        println JsonOutput.toJson(parsed)
        """
    )
    paths = [str(MODULES_DIR / module / "meta.yml") for module in MODULES]
    result = subprocess.run(
        ["java", "-cp", f"{lib_dir}/*", "groovy.ui.GroovyMain", "-e", script, *paths],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    json_line = next(line for line in result.stdout.splitlines() if line.startswith("{"))
    parsed = json.loads(json_line)
    return {module: parsed[path] for module, path in zip(MODULES, paths, strict=True)}


def _names(entries: list) -> list[str]:
    """[{name: {...}}, ...] -> [name, ...]."""
    return [next(iter(entry)) for entry in entries]


@pytest.mark.parametrize("module", MODULES)
def test_meta_yml_documents_exactly_what_main_nf_declares(module: str, meta_yml: dict) -> None:
    process = parse_process(MODULES_DIR / module / "main.nf")
    meta = meta_yml[module]
    assert meta["name"] == process["name"].lower()

    documented_inputs = [
        _names(channel) if isinstance(channel, list) else _names([channel])
        for channel in meta["input"]
    ]
    assert documented_inputs == process["inputs"]

    assert list(meta["output"]) == list(process["outputs"])
    for emit, declared in process["outputs"].items():
        assert len(meta["output"][emit]) == 1, f"{module}: output {emit} must be one tuple"
        assert _names(meta["output"][emit][0]) == declared["elements"], f"{module}: {emit}"
        for entry, kind in zip(meta["output"][emit][0], declared["kinds"], strict=True):
            documented_type = next(iter(entry.values()))["type"]
            expected = {"path": "file", "eval": "eval"}.get(kind, {"map", "string"})
            assert documented_type in (expected if isinstance(expected, set) else {expected})

    topics = {}
    for declared in process["outputs"].values():
        if declared["topic"]:
            topics.setdefault(declared["topic"], []).append(declared["elements"])
    documented_topics = {
        topic: [_names(channel) for channel in channels]
        for topic, channels in (meta.get("topics") or {}).items()
    }
    assert documented_topics == topics
    assert "versions" in topics, "versions go to the `versions` topic"

    for input_entry in [
        e
        for channel in meta["input"]
        for e in (channel if isinstance(channel, list) else [channel])
    ]:
        assert next(iter(input_entry.values())).get("description"), input_entry


@pytest.mark.parametrize("module", MODULES)
def test_module_anatomy_is_nf_core(module: str) -> None:
    folder = MODULES_DIR / module
    process = parse_process(folder / "main.nf")
    text = process["text"]
    assert 'tag "$meta.id"' in text
    assert re.search(r"label 'process_(single|low|medium|high)'", text)
    assert 'conda "${moduleDir}/environment.yml"' in text
    assert "workflow.containerEngine in ['singularity', 'apptainer']" in text
    assert "task.ext.when == null || task.ext.when" in text
    assert "task.ext.args ?: ''" in text
    assert 'task.ext.prefix ?: "${meta.id}"' in text
    assert "\n    stub:\n" in text
    assert (folder / "environment.yml").is_file()
    nf_test = (folder / "tests" / "main.nf.test").read_text()
    assert f'process "{process["name"]}"' in nf_test
    assert 'script "../main.nf"' in nf_test
    assert 'options "-stub"' in nf_test
    assert f'tag "vaebin/{module}"' in nf_test
    # nf-test writes a missing snapshot and passes; CI (`nf-test test --ci`) needs it committed,
    # with one entry per test case that asserts a snapshot.
    snapshot = json.loads((folder / "tests" / "main.nf.test.snap").read_text())
    cases = re.findall(r'test\("([^"]+)"\)\s*\{(.*?)\n    \}\n', nf_test, flags=re.S)
    assert sorted(snapshot) == sorted(name for name, body in cases if "snapshot(" in body)


def test_ci_runs_nf_test_from_the_pipeline_folder() -> None:
    """nf-test.config sits in nextflow/ with the config file and helpers it names."""
    config = (NEXTFLOW_DIR / "nf-test.config").read_text()
    assert 'testsDir   "."' in config
    assert (NEXTFLOW_DIR / "tests" / "nextflow.config").is_file()
    assert (NEXTFLOW_DIR / "tests" / "lib" / "VaebinTest.groovy").is_file()
    assert (NEXTFLOW_DIR / "tests" / "main.nf.test.snap").is_file()
    ci = (REPO / ".ci" / "run").read_text()
    assert "cd nextflow" in ci and "nf-test test --ci" in ci


def test_binreads_module_switches_device_and_image_as_bin_does() -> None:
    bin_text = (MODULES_DIR / "bin" / "main.nf").read_text()
    text = (MODULES_DIR / "binreads" / "main.nf").read_text()
    for line in (
        "label 'process_high'",
        "label 'process_gpu'",
        "task.accelerator ? 'cuda' : 'cpu'",
    ):
        assert line in bin_text and line in text, line
    assert "--device ${device}" in text
    container = re.compile(r'^    container ".*?"$', flags=re.M | re.S)
    assert container.search(text).group(0) == container.search(bin_text).group(0)
    modules_config = (NEXTFLOW_DIR / "conf" / "modules.config").read_text()
    binreads_block = modules_config[modules_config.index("withName: 'VAEBIN_BINREADS'") :]
    assert "ext.docker_image_gpu      = params.docker_image_gpu" in binreads_block
    assert "ext.singularity_image_gpu = params.singularity_image_gpu" in binreads_block


def test_bin_module_has_gpu_test_and_device_switch() -> None:
    text = (MODULES_DIR / "bin" / "main.nf").read_text()
    assert "task.accelerator ? 'cuda' : 'cpu'" in text
    assert "--device ${device}" in text
    gpu_test = (MODULES_DIR / "bin" / "tests" / "main.gpu.nf.test").read_text()
    assert 'tag "gpu"' in gpu_test
    assert "accelerator = 1" in (MODULES_DIR / "bin" / "tests" / "nextflow.gpu.config").read_text()


# --------------------------------------------------------------------------------------------
# Stub runs of every module, then -resume
# --------------------------------------------------------------------------------------------


INCLUDE_PATTERN = re.compile(
    r"include \{ (\w+)(?: as (\w+))? \} from '[^']*/vaebin/(\w+)/main\.nf'"
)


def _driver_script(includes: str, body: str) -> str:
    """A workflow that records every emitted item of every included module as JSON lines."""
    recorders = []
    # Aliases come from the include lines: VAEBIN_BIN must not claim VAEBIN_BINREADS.
    for name, alias, module in INCLUDE_PATTERN.findall(includes):
        alias = alias or name
        process = parse_process(MODULES_DIR / module / "main.nf")
        if re.search(rf"\b{alias}\b", body):
            for emit in process["outputs"]:
                recorders.append(
                    f"    {alias}.out.{emit}.map {{ item -> "
                    f"JsonOutput.toJson([ process: '{alias}', module: '{module}', emit: '{emit}', "
                    f"item: item.collect {{ value -> value instanceof List ? "
                    f"value.collect {{ it.toString() }} : value.toString() }} ]) }}"
                    f".set {{ record_{alias}_{emit} }}"
                )
    names = sorted({line.split(".set { ")[1].rstrip(" }") for line in recorders})
    record_all = (
        f"    {names[0]}.mix({', '.join(names[1:])})\n"
        "        .collectFile(name: 'emitted.jsonl', storeDir: \"${launchDir}\",\n"
        "                     newLine: true, sort: true)"
    )
    versions = (
        "    channel.topic('versions').map { it.join('\\t') }.unique()\n"
        "        .collectFile(name: 'versions.tsv', storeDir: \"${launchDir}\",\n"
        "                     newLine: true, sort: true)"
    )
    return "\n".join(
        [
            "nextflow.preview.topic = true",
            "import groovy.json.JsonOutput",
            includes,
            "workflow {",
            body,
            "\n".join(dict.fromkeys(recorders)),
            record_all,
            versions,
            "}",
        ]
    )


def _include(module: str, alias: str | None = None) -> str:
    name = parse_process(MODULES_DIR / module / "main.nf")["name"]
    target = f"{name} as {alias}" if alias else name
    return f"include {{ {target} }} from '{MODULES_DIR / module / 'main.nf'}'"


def read_emitted(folder: Path) -> list[dict]:
    return [
        json.loads(line) for line in (folder / "emitted.jsonl").read_text().splitlines() if line
    ]


STUB_BODY = """
    contigs = file("${launchDir}/inputs/contigs.fna.gz")
    bams = [ file("${launchDir}/inputs/sample1.bam"), file("${launchDir}/inputs/sample2.bam") ]
    VAEBIN_SIMULATE ( [ id:'toy' ] )
    VAEBIN_COVERAGE (
        Channel.fromList(bams).map { bam -> [ [ id:bam.baseName, group:'toy' ], contigs, bam ] }
    )
    VAEBIN_MERGEDEPTHS (
        VAEBIN_COVERAGE.out.depth
            .toSortedList { a, b -> a[0].id <=> b[0].id }
            .map { pairs -> [ [ id:'toy' ], pairs.collect { pair -> pair[1] } ] }
    )
    VAEBIN_BIN ( VAEBIN_MERGEDEPTHS.out.depth.map { meta, depth -> [ meta, contigs, depth, [] ] } )
    VAEBIN_BIN_GPU ( Channel.of( [ [ id:'toy_gpu' ], contigs, [], bams ] ) )
    // Two samples whose files share a name; then FASTQ with FASTA (bins in FASTA), on a GPU.
    VAEBIN_BINREADS ( Channel.of( [ [ id:'toy_reads' ], [
        file("${launchDir}/inputs/run1/reads.fq.gz"), file("${launchDir}/inputs/run2/reads.fq.gz")
    ] ] ) )
    VAEBIN_BINREADS_GPU ( Channel.of( [ [ id:'toy_reads_gpu' ], [
        file("${launchDir}/inputs/run1/reads.fq.gz"), file("${launchDir}/inputs/run3/reads.fa")
    ] ] ) )
"""

# Long reads of the stub runs: run1 and run2 are FASTQ (gzipped), run3 plain FASTA.
STUB_READS = {
    "run1/reads.fq.gz": "@r1_1 first\nACGTACGTAC\n+\n@IIIIIIIII\n@r1_2\nGGCCTT\n+\nIIIIII\n",
    "run2/reads.fq.gz": "@r2_1\nTTGACCAGTA\n+\n>IIIIIIIII\n",
    "run3/reads.fa": ">r3_1 third\nACGT\nACGT\n>r3_2\nGG\n",
}


def _write_stub_reads(folder: Path) -> None:
    for name, text in STUB_READS.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".gz"):
            with gzip.open(path, "wt") as handle:
                handle.write(text)
        else:
            path.write_text(text)


@pytest.fixture(scope="module")
def stub_run(tmp_path_factory: pytest.TempPathFactory, nextflow: Path, vaebin_cli: Path) -> Path:
    """All modules with -stub-run on tiny made-up inputs (stubs never read the BAMs)."""
    folder = tmp_path_factory.mktemp("stub")
    (folder / "inputs").mkdir()
    with gzip.open(folder / "inputs" / "contigs.fna.gz", "wt") as handle:
        handle.write(">contig_1 first\nACGTACGTAC\nGGT\n>contig_2\nTTGACCA\n")
    for sample in ("sample1", "sample2"):
        (folder / "inputs" / f"{sample}.bam").write_bytes(b"not read by the stubs")
    _write_stub_reads(folder / "inputs")
    includes = "\n".join(
        [
            _include("simulate"),
            _include("coverage"),
            _include("mergedepths"),
            _include("bin"),
            _include("bin", "VAEBIN_BIN_GPU"),
            _include("binreads"),
            _include("binreads", "VAEBIN_BINREADS_GPU"),
        ]
    )
    (folder / "main.nf").write_text(_driver_script(includes, STUB_BODY))
    (folder / "test.config").write_text(
        TEST_CONFIG
        + "\nprocess { withName: 'VAEBIN_BIN_GPU|VAEBIN_BINREADS_GPU' { accelerator = 1 } }\n"
    )
    run_nextflow(
        nextflow,
        folder,
        folder / "main.nf",
        "-stub-run",
        "-c",
        str(folder / "test.config"),
        "-with-trace",
        str(folder / "trace_first.txt"),
        cli=vaebin_cli,
    )
    return folder


def _declared_outputs(module: str) -> dict:
    return parse_process(MODULES_DIR / module / "main.nf")["outputs"]


@pytest.mark.parametrize("module", MODULES)
def test_stub_run_emits_every_declared_output(module: str, stub_run: Path) -> None:
    emitted = [record for record in read_emitted(stub_run) if record["module"] == module]
    assert emitted, f"{module} emitted nothing"
    for process_alias in {record["process"] for record in emitted}:
        for emit, declared in _declared_outputs(module).items():
            items = [
                r["item"] for r in emitted if r["process"] == process_alias and r["emit"] == emit
            ]
            assert items, f"{process_alias}: stub emitted nothing on `{emit}`"
            for item in items:
                assert len(item) == len(declared["elements"])
                for value, kind, pattern in zip(
                    item, declared["kinds"], declared["elements"], strict=True
                ):
                    if kind != "path":
                        continue
                    files = value if isinstance(value, list) else [value]
                    assert files, f"{process_alias}.{emit}: no files"
                    glob = re.sub(r"\$\{prefix\}", "*", pattern)
                    for name in files:
                        path = Path(name)
                        assert path.exists(), name
                        task_relative = "/".join(path.parts[-len(Path(glob).parts) :])
                        assert fnmatch.fnmatch(task_relative, glob), (task_relative, glob)


def _gz_fasta_names(path: Path) -> list[str]:
    with gzip.open(path, "rt") as handle:
        return [line[1:].split()[0] for line in handle if line.startswith(">")]


def _read_names(path: Path) -> list[str]:
    """Names of the reads of a FASTQ or FASTA file, gzipped or not, in file order."""
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt") as handle:
        lines = handle.read().splitlines()
    if not lines:
        return []
    if lines[0].startswith("@"):
        assert len(lines) % 4 == 0, f"{path}: not a 4-line FASTQ"
        assert all(line.startswith("+") for line in lines[2::4]), path
        return [line[1:].split()[0] for line in lines[0::4]]
    return [line[1:].split()[0] for line in lines if line.startswith(">")]


def test_stub_outputs_have_the_real_formats(stub_run: Path) -> None:
    emitted = read_emitted(stub_run)

    def files(process: str, emit: str) -> list[Path]:
        found = []
        for record in emitted:
            if record["process"] == process and record["emit"] == emit:
                value = record["item"][1]
                found += [Path(v) for v in (value if isinstance(value, list) else [value])]
        return found

    for depth in files("VAEBIN_COVERAGE", "depth"):
        rows = [line.split("\t") for line in depth.read_text().splitlines()]
        sample = depth.name.removesuffix(".depth.tsv")
        assert rows[0] == [
            "contigName",
            "contigLen",
            "totalAvgDepth",
            f"{sample}.bam",
            f"{sample}.bam-var",
        ]
        assert [(row[0], row[1]) for row in rows[1:]] == [("contig_1", "13"), ("contig_2", "7")]
    (merged,) = files("VAEBIN_MERGEDEPTHS", "depth")
    assert merged.read_text().splitlines()[0].split("\t")[3:] == [
        "sample1.bam",
        "sample1.bam-var",
        "sample2.bam",
        "sample2.bam-var",
    ]
    for process, device in (("VAEBIN_BIN", "cpu"), ("VAEBIN_BIN_GPU", "cuda")):
        (clusters,) = files(process, "clusters")
        assert clusters.read_text().splitlines()[0] == "clustername\tcontigname"
        (binning,) = files(process, "binning")
        assert binning.read_text().splitlines()[:4] == [
            "@Version:0.9.1",
            binning.read_text().splitlines()[1],
            "",
            "@@SEQUENCEID\tBINID",
        ]
        bins = files(process, "bins")
        assert sorted(name for b in bins for name in _gz_fasta_names(b)) == ["contig_1", "contig_2"]
        (summary,) = files(process, "summary")
        assert json.loads(summary.read_text())["device"] == device
    stub_reads = {name: _read_names(stub_run / "inputs" / name) for name in STUB_READS}
    for process, prefix, inputs, suffix, device in (
        ("VAEBIN_BINREADS", "toy_reads", ["run1/reads.fq.gz", "run2/reads.fq.gz"], "fq.gz", "cpu"),
        (
            "VAEBIN_BINREADS_GPU",
            "toy_reads_gpu",
            ["run1/reads.fq.gz", "run3/reads.fa"],
            "fa.gz",
            "cuda",
        ),
    ):
        expected_reads = [read for name in inputs for read in stub_reads[name]]
        (clusters,) = files(process, "clusters")
        rows = [line.split("\t") for line in clusters.read_text().splitlines()]
        assert rows[0] == ["clustername", "readname"]
        assert rows[1:] == [[f"{prefix}.1", read] for read in expected_reads]
        (bin_file,) = files(process, "bins")
        assert bin_file.name == f"{prefix}.1.{suffix}"
        assert _read_names(bin_file) == expected_reads
        (unbinned,) = files(process, "unbinned")
        assert unbinned.name == f"unbinned.{suffix}" and _read_names(unbinned) == []
        (summary,) = files(process, "summary")
        assert json.loads(summary.read_text()) == {
            "stub": True,
            "mode": "reads",
            "device": device,
            "bins": 1,
        }
        (model,) = files(process, "model")
        assert model.name == "model.pt"
    versions = (stub_run / "versions.tsv").read_text().splitlines()
    processes = {line.split("\t")[0] for line in versions}
    assert processes == {
        "VAEBIN_SIMULATE",
        "VAEBIN_COVERAGE",
        "VAEBIN_MERGEDEPTHS",
        "VAEBIN_BIN",
        "VAEBIN_BIN_GPU",
        "VAEBIN_BINREADS",
        "VAEBIN_BINREADS_GPU",
    }
    assert all(line.split("\t")[1:] == ["vaebin-rs", VERSION] for line in versions)


def test_resume_reruns_nothing(stub_run: Path, nextflow: Path, vaebin_cli: Path) -> None:
    first = read_trace(stub_run / "trace_first.txt")
    assert first and all(task["status"] == "COMPLETED" for task in first)
    run_nextflow(
        nextflow,
        stub_run,
        stub_run / "main.nf",
        "-stub-run",
        "-resume",
        "-c",
        str(stub_run / "test.config"),
        "-with-trace",
        str(stub_run / "trace_resumed.txt"),
        cli=vaebin_cli,
    )
    resumed = read_trace(stub_run / "trace_resumed.txt")
    assert sorted(task["name"] for task in resumed) == sorted(task["name"] for task in first)
    assert {task["status"] for task in resumed} == {"CACHED"}, resumed
    assert sorted(task["hash"] for task in resumed) == sorted(task["hash"] for task in first)


# --------------------------------------------------------------------------------------------
# Pipeline input checks
# --------------------------------------------------------------------------------------------


def _write_fasta(path: Path) -> Path:
    path.write_text(">contig_1\nACGTACGTAC\n")
    return path


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        pytest.param(
            "sample,bam,group\ns1,a.bam,g\ns2,missing.bam,g\n",
            ["line 3", "sample 's2'", "column 'bam'", "file not found", "missing.bam"],
            id="missing-bam",
        ),
        pytest.param(
            "sample,bam,group,contigs\ns1,a.bam,g,asm1.fna\ns2,b.bam,g,asm2.fna\n",
            ["line 3", "sample 's2'", "column 'contigs'", "group 'g'", "asm1.fna", "line 2"],
            id="contigs-differ-in-group",
        ),
        pytest.param(
            "sample,bam,group\ns1,a.bam,g\ns1,b.bam,g\n",
            ["line 3", "sample 's1'", "column 'sample'", "already given on line 2", "group 'g'"],
            id="sample-twice",
        ),
    ],
)
def test_bad_samplesheet_names_line_and_column(
    rows: str, expected: list[str], tmp_path: Path, nextflow: Path
) -> None:
    for name in ("a.bam", "b.bam"):
        (tmp_path / name).write_bytes(b"")
    _write_fasta(tmp_path / "asm1.fna")
    _write_fasta(tmp_path / "asm2.fna")
    (tmp_path / "samplesheet.csv").write_text(rows)
    result = run_nextflow(
        nextflow,
        tmp_path,
        NEXTFLOW_DIR / "main.nf",
        "--input",
        str(tmp_path / "samplesheet.csv"),
        "--contigs",
        str(tmp_path / "asm1.fna"),
        "--outdir",
        str(tmp_path / "results"),
        expect_success=False,
    )
    assert result.returncode != 0
    message = next(
        (line for line in result.stdout.splitlines() if line.startswith("Samplesheet ")), ""
    )
    assert message, result.stdout
    for fragment in expected:
        assert fragment in message, (fragment, message)
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


@pytest.mark.parametrize(
    ("rows", "contigs", "expected"),
    [
        pytest.param(
            "sample,reads,group\ns1,a.fq.gz,g\ns2,missing.fq.gz,g\n",
            False,
            ["line 3", "sample 's2'", "column 'reads'", "file not found", "missing.fq.gz"],
            id="missing-reads",
        ),
        pytest.param(
            "sample,reads\ns1,a.fq.gz\ns2,a.bam\n",
            False,
            ["line 3", "sample 's2'", "column 'reads'", "'a.bam' is not a FASTQ or FASTA file"],
            id="reads-not-fastq",
        ),
        pytest.param(
            "sample,reads\ns1,a.fq.gz\ns1,b.fq.gz\n",
            False,
            ["line 3", "sample 's1'", "column 'sample'", "already given on line 2", "group 'all'"],
            id="sample-twice",
        ),
        pytest.param(
            "sample,reads,group\ns1,a.fq.gz,g\ns2,a.fq.gz,g\n",
            False,
            ["line 3", "sample 's2'", "column 'reads'", "a.fq.gz already given on line 2"],
            id="reads-twice",
        ),
        pytest.param(
            "sample,reads,group\ns1,a.fq.gz,g 1\n",
            False,
            ["line 2", "sample 's1'", "column 'group'", "'g 1'"],
            id="bad-group",
        ),
        pytest.param(
            "sample,bam,reads\ns1,a.bam,a.fq.gz\n",
            False,
            ["column 'bam' cannot be combined with column 'reads'", "sample,reads[,group]"],
            id="bam-and-reads",
        ),
        pytest.param(
            "sample,reads\ns1,a.fq.gz\n",
            True,
            ["--contigs is not used with a long-read samplesheet"],
            id="contigs-parameter",
        ),
    ],
)
def test_bad_long_read_samplesheet_names_line_and_column(
    rows: str, contigs: bool, expected: list[str], tmp_path: Path, nextflow: Path
) -> None:
    for name in ("a.fq.gz", "b.fq.gz"):
        (tmp_path / name).write_bytes(gzip.compress(b"@r1\nACGT\n+\nIIII\n"))
    (tmp_path / "a.bam").write_bytes(b"")
    (tmp_path / "samplesheet.csv").write_text(rows)
    contigs_option = ["--contigs", str(_write_fasta(tmp_path / "asm.fna"))] if contigs else []
    result = run_nextflow(
        nextflow,
        tmp_path,
        NEXTFLOW_DIR / "main.nf",
        "--input",
        str(tmp_path / "samplesheet.csv"),
        *contigs_option,
        "--outdir",
        str(tmp_path / "results"),
        expect_success=False,
    )
    assert result.returncode != 0
    message = next(
        (line for line in result.stdout.splitlines() if line.startswith("Samplesheet ")), ""
    )
    assert message, result.stdout
    assert str(tmp_path / "samplesheet.csv") in message
    for fragment in expected:
        assert fragment in message, (fragment, message)
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


def test_parameters_are_checked_against_the_schema(tmp_path: Path, nextflow: Path) -> None:
    (tmp_path / "a.bam").write_bytes(b"")
    (tmp_path / "samplesheet.csv").write_text("sample,bam\ns1,a.bam\n")
    result = run_nextflow(
        nextflow,
        tmp_path,
        NEXTFLOW_DIR / "main.nf",
        "--input",
        str(tmp_path / "samplesheet.csv"),
        "--contigs",
        str(_write_fasta(tmp_path / "asm.fna")),
        "--outdir",
        str(tmp_path / "results"),
        "--seed",
        "abc",
        "--min_identity",
        "2",
        "--simulate",
        "huge",
        "--seeed",
        "3",
        expect_success=False,
    )
    assert result.returncode != 0
    assert "Invalid parameters:" in result.stdout
    assert "--seed: expected integer, got 'abc'" in result.stdout
    assert "--min_identity: 2 is above the maximum 1" in result.stdout
    assert "--simulate: 'huge' is not one of toy, small, benchmark" in result.stdout
    assert "--seeed" in result.stdout + result.stderr  # warned as unknown


def test_schema_defaults_match_nextflow_config() -> None:
    schema = json.loads((NEXTFLOW_DIR / "nextflow_schema.json").read_text())
    config = (NEXTFLOW_DIR / "nextflow.config").read_text()
    params_block = config[
        config.index("params {") : config.index("\n}\n", config.index("params {"))
    ]
    configured = dict(
        re.findall(r"^\s+(\w+)\s*=\s*([^\n/]+?)\s*(?://.*)?$", params_block, flags=re.M)
    )
    properties = {
        name: definition
        for group in schema["$defs"].values()
        for name, definition in group["properties"].items()
    }
    assert set(properties) == set(configured)
    for name, definition in properties.items():
        value = configured[name]
        expected = definition.get("default")
        if expected is None:
            assert value == "null", name
        elif isinstance(expected, bool):
            assert value == str(expected).lower(), name
        elif isinstance(expected, str):
            assert value == f"'{expected}'", name
        else:
            assert value == str(expected), name


# --------------------------------------------------------------------------------------------
# Real runs: the modules and the pipeline call the real vaebin-rs
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory, vaebin_cli: Path) -> Path:
    """The toy data set the nf-tests use: `vaebin-rs simulate --preset toy --seed 1`."""
    _require_commands(vaebin_cli, "simulate")
    folder = tmp_path_factory.mktemp("simulated")
    subprocess.run(
        [vaebin_cli, "simulate", "--outdir", folder, "--preset", "toy", "--seed", "1", "-q"],
        check=True,
        timeout=300,
    )
    return folder


def _cli_coverage(cli: Path, folder: Path, bam: str, out: Path) -> str:
    """The CLI's depth table of one BAM, run where the BAM is so its column has the same name."""
    subprocess.run(
        [cli, "coverage", "--contigs", "contigs.fna.gz", "--bam", bam, "--out", out, "-q"],
        cwd=folder,
        check=True,
        timeout=300,
    )
    return out.read_text()


@pytest.fixture(scope="module")
def cli_depths(
    tmp_path_factory: pytest.TempPathFactory, vaebin_cli: Path, simulated: Path
) -> dict[str, str]:
    """`vaebin-rs coverage` of each simulated BAM and `vaebin-rs merge-depths` of both."""
    _require_commands(vaebin_cli, "coverage", "merge-depths")
    folder = tmp_path_factory.mktemp("cli_depths")
    tables = {}
    for sample in ("sample1", "sample2"):
        out = folder / f"{sample}.tsv"
        tables[sample] = _cli_coverage(vaebin_cli, simulated, f"{sample}.bam", out)
    tables_in = [folder / "sample1.tsv", folder / "sample2.tsv"]
    subprocess.run(
        [vaebin_cli, "merge-depths", *tables_in, "--out", folder / "merged.tsv", "-q"],
        check=True,
        timeout=300,
    )
    tables["merged"] = (folder / "merged.tsv").read_text()
    return tables


REAL_MODULES_BODY = """
    contigs = file("${params.data}/contigs.fna.gz")
    bams = file("${params.data}/*.bam").sort { bam -> bam.name }
    VAEBIN_COVERAGE (
        Channel.fromList(bams).map { bam -> [ [ id:bam.baseName, group:'toy' ], contigs, bam ] }
    )
    VAEBIN_MERGEDEPTHS (
        VAEBIN_COVERAGE.out.depth
            .toSortedList { a, b -> a[0].id <=> b[0].id }
            .map { pairs -> [ [ id:'toy' ], pairs.collect { pair -> pair[1] } ] }
    )
"""


@pytest.fixture(scope="module")
def real_modules_run(
    tmp_path_factory: pytest.TempPathFactory, nextflow: Path, vaebin_cli: Path, simulated: Path
) -> Path:
    """VAEBIN_COVERAGE per BAM and VAEBIN_MERGEDEPTHS on the nf-tests' data set."""
    _require_commands(vaebin_cli, "coverage", "merge-depths")
    folder = tmp_path_factory.mktemp("modules")
    includes = "\n".join([_include("coverage"), _include("mergedepths")])
    (folder / "main.nf").write_text(_driver_script(includes, REAL_MODULES_BODY))
    (folder / "test.config").write_text(TEST_CONFIG)
    run_nextflow(
        nextflow,
        folder,
        folder / "main.nf",
        "-c",
        str(folder / "test.config"),
        "--data",
        str(simulated),
        cli=vaebin_cli,
    )
    return folder


def _emitted_files(folder: Path, process: str, emit: str) -> list[Path]:
    found = []
    for record in read_emitted(folder):
        if record["process"] == process and record["emit"] == emit:
            value = record["item"][1]
            found += [Path(v) for v in (value if isinstance(value, list) else [value])]
    return found


def test_coverage_module_equals_cli_on_the_same_bam(
    real_modules_run: Path, cli_depths: dict[str, str]
) -> None:
    emitted = _emitted_files(real_modules_run, "VAEBIN_COVERAGE", "depth")
    tables = {path.name: path for path in emitted}
    assert sorted(tables) == ["sample1.depth.tsv", "sample2.depth.tsv"]
    for sample in ("sample1", "sample2"):
        expected = cli_depths[sample]
        assert tables[f"{sample}.depth.tsv"].read_text() == expected
        rows = expected.splitlines()
        assert rows[0].split("\t")[3:] == [f"{sample}.bam", f"{sample}.bam-var"]
        assert any(float(row.split("\t")[2]) > 0 for row in rows[1:]), "all depths zero"


def test_mergedepths_module_equals_cli(real_modules_run: Path, cli_depths: dict[str, str]) -> None:
    (merged,) = _emitted_files(real_modules_run, "VAEBIN_MERGEDEPTHS", "depth")
    assert merged.name == "toy.depth.tsv"
    assert merged.read_text() == cli_depths["merged"]


def test_pipeline_resume_reruns_nothing(tmp_path: Path, nextflow: Path, vaebin_cli: Path) -> None:
    """-profile test twice (stub runs: the channel logic, not the tools), the second all cached."""
    common = ["-profile", "test", "-stub-run", "--outdir", str(tmp_path / "results")]
    trace_first, trace_resumed = tmp_path / "trace_first.txt", tmp_path / "trace_resumed.txt"
    run_nextflow(
        nextflow,
        tmp_path,
        NEXTFLOW_DIR / "main.nf",
        *common,
        "-with-trace",
        str(trace_first),
        cli=vaebin_cli,
    )
    first = read_trace(trace_first)
    assert len(first) == 5 and {task["status"] for task in first} == {"COMPLETED"}
    run_nextflow(
        nextflow,
        tmp_path,
        NEXTFLOW_DIR / "main.nf",
        *common,
        "-resume",
        "-with-trace",
        str(trace_resumed),
        cli=vaebin_cli,
    )
    resumed = read_trace(trace_resumed)
    assert sorted(task["name"] for task in resumed) == sorted(task["name"] for task in first)
    assert {task["status"] for task in resumed} == {"CACHED"}, resumed


# --------------------------------------------------------------------------------------------
# Long reads: a samplesheet with a `reads` column runs VAEBIN_BINREADS per group
# --------------------------------------------------------------------------------------------


def test_reads_pipeline_stub_run_publishes_every_declared_output(
    tmp_path: Path, nextflow: Path, vaebin_cli: Path
) -> None:
    """Two groups (one with a FASTA file) from a long-read samplesheet, -stub-run."""
    _write_stub_reads(tmp_path / "inputs")
    (tmp_path / "samplesheet.csv").write_text(
        "sample,reads,group\n"
        "s2,inputs/run2/reads.fq.gz,fastq\n"
        "s1,inputs/run1/reads.fq.gz,fastq\n"
        "s3,inputs/run3/reads.fa,mixed\n"
        "s1,inputs/run1/reads.fq.gz,mixed\n"
    )
    (tmp_path / "test.config").write_text(TEST_CONFIG)
    run_nextflow(
        nextflow,
        tmp_path,
        NEXTFLOW_DIR / "main.nf",
        "-stub-run",
        "-c",
        str(tmp_path / "test.config"),
        "--input",
        str(tmp_path / "samplesheet.csv"),
        "--outdir",
        str(tmp_path / "results"),
        cli=vaebin_cli,
    )
    results = tmp_path / "results"
    assert sorted(path.name for path in results.iterdir()) == ["binning", "pipeline_info"]
    reads = {name: _read_names(tmp_path / "inputs" / name) for name in STUB_READS}
    declared = _declared_outputs("binreads")
    for group, inputs, suffix in (
        # in sample order, whatever the order of the rows
        ("fastq", ["run1/reads.fq.gz", "run2/reads.fq.gz"], "fq.gz"),
        ("mixed", ["run1/reads.fq.gz", "run3/reads.fa"], "fa.gz"),
    ):
        folder = results / "binning" / group
        for emit, output in declared.items():
            if output["topic"]:
                continue
            pattern = output["elements"][1].replace("${prefix}", group)
            assert list(results.joinpath("binning").glob(pattern)), (group, emit, pattern)
        expected = [read for name in inputs for read in reads[name]]
        rows = (folder / "read_clusters.tsv").read_text().splitlines()
        assert rows == ["clustername\treadname", *[f"{group}.1\t{read}" for read in expected]]
        assert _read_names(folder / "bins" / f"{group}.1.{suffix}") == expected
        assert _read_names(folder / f"unbinned.{suffix}") == []
        assert json.loads((folder / "summary.json").read_text())["mode"] == "reads"
    versions = (results / "pipeline_info" / "software_versions.yml").read_text()
    assert versions.strip() == f"VAEBIN_BINREADS:\n  vaebin-rs: {VERSION}"


@pytest.fixture(scope="module")
def simulated_long_reads(tmp_path_factory: pytest.TempPathFactory, vaebin_cli: Path) -> Path:
    """`vaebin-rs simulate --long-reads --preset toy --seed 1`: sample1/2.fq.gz, samplesheet."""
    _require_commands(vaebin_cli, "simulate", "bin-reads")
    folder = tmp_path_factory.mktemp("simulated_long_reads")
    options = ["--long-reads", "--preset", "toy", "--seed", "1", "-q"]
    subprocess.run([vaebin_cli, "simulate", *options, "--outdir", folder], check=True, timeout=300)
    return folder


@pytest.fixture(scope="module")
def reads_pipeline_run(
    tmp_path_factory: pytest.TempPathFactory,
    nextflow: Path,
    vaebin_cli: Path,
    simulated_long_reads: Path,
) -> Path:
    """The pipeline on the simulated long-read samplesheet (`sample,reads`), a short training."""
    folder = tmp_path_factory.mktemp("reads_pipeline")
    (folder / "test.config").write_text(TEST_CONFIG)
    run_nextflow(
        nextflow,
        folder,
        NEXTFLOW_DIR / "main.nf",
        "-c",
        str(folder / "test.config"),
        "--input",
        str(simulated_long_reads / "samplesheet.csv"),
        "--outdir",
        str(folder / "results"),
        "--epochs",
        "2",
        "--min_bin_size",
        "100000",
        "--bin_reads_args",
        "--max-train-reads 5000",
        cli=vaebin_cli,
    )
    return folder


def test_reads_pipeline_bins_the_simulated_long_reads(
    reads_pipeline_run: Path, simulated_long_reads: Path
) -> None:
    samplesheet = list(csv.DictReader((simulated_long_reads / "samplesheet.csv").open()))
    assert [row["sample"] for row in samplesheet] == ["sample1", "sample2"]
    input_reads = [
        read
        for row in samplesheet
        for read in _read_names(simulated_long_reads / Path(row["reads"]).name)
    ]
    assert input_reads and len(input_reads) == len(set(input_reads))

    folder = reads_pipeline_run / "results" / "binning" / "all"  # no `group` column: `all`
    rows = [line.split("\t") for line in (folder / "read_clusters.tsv").read_text().splitlines()]
    assert rows[0] == ["clustername", "readname"]
    assert all(len(row) == 2 and re.fullmatch(r"all\.\d+", row[0]) for row in rows[1:])
    clustered = [row[1] for row in rows[1:]]
    assert len(clustered) == len(set(clustered))
    assert set(clustered) <= set(input_reads)

    # Each bin's file holds exactly the reads the table gives it; bins and unbinned hold them all.
    bins = sorted((folder / "bins").glob("all.*.fq.gz"))
    assert sorted(path.name.removesuffix(".fq.gz") for path in bins) == sorted(
        {row[0] for row in rows[1:]}
    )
    for path in bins:
        name = path.name.removesuffix(".fq.gz")
        assert sorted(_read_names(path)) == sorted(row[1] for row in rows[1:] if row[0] == name)
    unbinned = _read_names(folder / "unbinned.fq.gz")
    assert sorted(clustered + unbinned) == sorted(input_reads)

    summary = json.loads((folder / "summary.json").read_text())
    assert summary["mode"] == "reads"
    assert summary["device"] == "cpu"
    assert [sample["name"] for sample in summary["samples"]] == ["sample1", "sample2"]
    assert summary["counts"]["binned_reads"] == len(clustered)
    assert (folder / "model.pt").stat().st_size > 0
    command = next(reads_pipeline_run.glob("work/*/*/.command.sh")).read_text()
    for option in ("--device cpu", "--seed 1", "--epochs 2", "--min-bin-size 100000"):
        assert option in command, option
    assert "--max-train-reads 5000" in command and "--bin-prefix all" in command
    versions = reads_pipeline_run / "results" / "pipeline_info" / "software_versions.yml"
    assert versions.read_text().strip() == f"VAEBIN_BINREADS:\n  vaebin-rs: {VERSION}"


DOCKER_RECORDER = """#!/usr/bin/env bash
# Stands in for `docker run`: notes the image and options, then runs the task on the host.
[ "$1" = run ] || exit 0
shift
options=()
while [ $# -gt 0 ]; do
    if [ "$1" = --name ]; then
        image=$3
        shift 3
        break
    fi
    options+=("$1")
    shift
done
echo "${image} ${options[*]}" >> "$DOCKER_RECORD"
cd "$NXF_TASK_WORKDIR"
exec "$@"
"""


def test_gpu_profile_gives_only_the_training_task_the_cuda_image_and_the_gpu(
    tmp_path: Path, nextflow: Path, vaebin_cli: Path
) -> None:
    """-profile docker,gpu: the images and `docker run` options each task gets (stub run)."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "docker").write_text(DOCKER_RECORDER)
    (shim / "docker").chmod(0o755)
    record = tmp_path / "docker_runs.txt"
    run_nextflow(
        nextflow,
        tmp_path,
        NEXTFLOW_DIR / "main.nf",
        "-profile",
        "test,docker,gpu",
        "-stub-run",
        "--outdir",
        str(tmp_path / "results"),
        "--docker_image_gpu",
        "example/vaebin-rs:gpu",
        cli=vaebin_cli,
        extra_env={
            "PATH": f"{shim}{os.pathsep}{os.environ.get('PATH', '')}",
            "DOCKER_RECORD": str(record),
        },
    )
    runs = [line.split(" ", 1) for line in record.read_text().splitlines()]
    assert len(runs) == 5  # simulate, coverage x2, merge, bin
    gpu_runs = [options for image, options in runs if image == "example/vaebin-rs:gpu"]
    cpu_runs = [options for image, options in runs if image == BIOCONTAINER]
    assert len(gpu_runs) == 1 and len(cpu_runs) == 4
    assert "--gpus all" in gpu_runs[0]
    assert not any("--gpus" in options for options in cpu_runs)
    summary = tmp_path / "results" / "binning" / "toy" / "summary.json"
    assert json.loads(summary.read_text())["device"] == "cuda"


APPTAINER_RECORDER = """#!/usr/bin/env bash
# Stands in for `apptainer exec`: notes the image, then runs the task's command on the host.
# Nextflow starts it under `env -`, passing only PATH and APPTAINERENV_*: the record is beside it.
[ "$1" = exec ] || exit 0
shift
while [ $# -gt 0 ] && [[ "$1" != *.sif ]]; do shift; done
echo "$1" >> "$(dirname "$0")/../runs.txt"
export NXF_TASK_WORKDIR=$APPTAINERENV_NXF_TASK_WORKDIR
shift
exec "$@"
"""


@pytest.mark.parametrize("engine", ["docker", "apptainer"])
def test_local_image_profile_runs_every_task_in_the_image_built_here(
    tmp_path: Path, nextflow: Path, vaebin_cli: Path, engine: str
) -> None:
    """-profile test,<engine>,local_image: the local build instead of biocontainers (stub run)."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / engine).write_text(DOCKER_RECORDER if engine == "docker" else APPTAINER_RECORDER)
    (shim / engine).chmod(0o755)
    (tmp_path / "vaebin-rs.sif").write_bytes(b"")
    record = tmp_path / "runs.txt"
    run_nextflow(
        nextflow,
        tmp_path,
        NEXTFLOW_DIR / "main.nf",
        "-profile",
        f"test,{engine},local_image",
        "-stub-run",
        "--outdir",
        str(tmp_path / "results"),
        cli=vaebin_cli,
        extra_env={
            "PATH": f"{shim}{os.pathsep}{os.environ.get('PATH', '')}",
            "DOCKER_RECORD": str(record),
        },
    )
    images = [line.split(" ", 1)[0] for line in record.read_text().splitlines()]
    expected = LOCAL_IMAGE if engine == "docker" else str(tmp_path / "vaebin-rs.sif")
    assert images == [expected] * 5  # simulate, coverage x2, merge, bin


def test_local_image_profile_names_the_tag_build_local_gives() -> None:
    build_local = (REPO / "containers" / "build-local.sh").read_text()
    assert 'podman tag "$tag" "localhost/vaebin-rs:$version"' in build_local
    config = (NEXTFLOW_DIR / "conf" / "local_image.config").read_text()
    assert f"'{LOCAL_IMAGE}'" in config
    assert (
        "includeConfig 'conf/local_image.config'" in (NEXTFLOW_DIR / "nextflow.config").read_text()
    )
