"""vaebin-rs.sif built with real Apptainer from the podman image, run as an ordinary user.

Opt-in (`VAEBIN_APPTAINER_TESTS=1`, set by .ci/run after .ci/install-apptainer.sh) and run as
root: it builds the podman image with containers/build-local.sh (cached layers: seconds), saves it
as a docker-archive, builds `vaebin-rs.sif` from containers/vaebin-rs.def as root, deletes the
archive, and runs the SIF as an unprivileged user (`VAEBIN_APPTAINER_USER`, default `vaebintest`,
created with `useradd` when missing), as on a cluster: `apptainer exec` as root stops on a
capability that some sandboxes withhold, and clusters run containers as users anyway. That user
runs the %test section, `vaebin-rs --version`, a small `vaebin-rs bin` whose bins equal the same
run on the host, and the pipeline with `-profile test,apptainer,local_image` (the SIF as
./vaebin-rs.sif of the launch folder), whose results equal a local
`-profile test` run's. Each step's time and the SIF's size are printed in the test log.
"""

from __future__ import annotations

import gzip
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pipeline_runs import (
    MAIN_NF,
    cli_path,
    comparable_results,
    differing,
    local_test_run,
    nextflow_wrapper,
)
from project_version import source_version

import vaebin

ROOT = Path(__file__).resolve().parents[1]
CONTAINERS = ROOT / "containers"
APPTAINER_DIRS = "/opt/apptainer/bin:/usr/local/bin"
APPTAINER = shutil.which("apptainer", path=f"{os.environ.get('PATH', '')}:{APPTAINER_DIRS}")
USER = os.environ.get("VAEBIN_APPTAINER_USER", "vaebintest")
# zstd level 3 squashes the 6.4 GB image to the size gzip (Apptainer's default) gives in about
# 1/30 of the CPU time (cuDNN's 848 MB: 4.2 s against 123 s of CPU, 524 MB against 521 MB), so
# the build is no longer dominated by mksquashfs; squashfuse (Debian's links libzstd) and
# Linux >= 4.14 read it. containers/README.md gives the same command.
MKSQUASHFS_ARGS = "-comp zstd -Xcompression-level 3"

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("VAEBIN_APPTAINER_TESTS") != "1",
        reason="builds a SIF of several GB and runs it; set VAEBIN_APPTAINER_TESTS=1 "
        "(.ci/install-apptainer.sh installs Apptainer)",
    ),
    pytest.mark.skipif(APPTAINER is None, reason="apptainer not found (.ci/install-apptainer.sh)"),
    pytest.mark.skipif(
        shutil.which("podman") is None or os.geteuid() != 0,
        reason="builds the image with rootful podman: needs podman and root",
    ),
]


@dataclass
class Sif:
    path: Path
    workspace: Path
    home: Path
    timings: dict[str, float] = field(default_factory=dict)


def _say(request: pytest.FixtureRequest, line: str) -> None:
    """A line in the test log even when output is captured."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"[apptainer] {line}")


def _as_user(
    *command: str | Path, cwd: Path, home: Path, timeout: int = 900, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command as the unprivileged user, with a clean environment."""
    env = [
        f"HOME={home}",
        f"USER={USER}",
        "LANG=C.UTF-8",
        f"PATH={path or f'{Path(APPTAINER).parent}:/usr/local/bin:/usr/bin:/bin'}",
        f"TMPDIR={cwd}",
    ]
    return subprocess.run(
        ["runuser", "-u", USER, "--", "env", "-i", *env, *map(str, command)],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _ensure_user() -> Path:
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", USER], check=True, capture_output=True)
        entry = pwd.getpwnam(USER)
    assert entry.pw_uid != 0, f"{USER} must be an ordinary user"
    return Path(entry.pw_dir)


def _build_sif(workspace: Path) -> dict[str, float]:
    """podman image -> docker-archive -> vaebin-rs.sif in `workspace`; the steps' seconds."""
    image = f"localhost/vaebin-rs:{source_version()}"  # the tag build-local.sh gives
    timings: dict[str, float] = {}

    started = time.monotonic()
    build = subprocess.run(
        [str(CONTAINERS / "build-local.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    timings["podman image (build-local.sh)"] = time.monotonic() - started

    archive = workspace / "vaebin-rs.tar"
    started = time.monotonic()
    subprocess.run(
        ["podman", "save", "--format", "docker-archive", "-o", str(archive), image],
        capture_output=True,
        check=True,
    )
    timings["podman save"] = time.monotonic() - started

    # The definition's default archive, vaebin-rs.tar, is read from the working folder, as
    # containers/README.md says. --notest: %test would run as root here; the user runs it.
    # --disable-cache: the layers would stay in root's ~/.apptainer/cache (3.3 GB).
    started = time.monotonic()
    built = subprocess.run(
        [
            APPTAINER, "build", "--notest", "--disable-cache",
            "--mksquashfs-args", MKSQUASHFS_ARGS,
            "vaebin-rs.sif", str(CONTAINERS / "vaebin-rs.def"),
        ],
        cwd=workspace,
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    timings["apptainer build"] = time.monotonic() - started
    archive.unlink()
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return timings


@pytest.fixture(scope="module")
def sif(request: pytest.FixtureRequest) -> Iterator[Sif]:
    home = _ensure_user()
    entry = pwd.getpwnam(USER)
    workspace = Path(tempfile.mkdtemp(prefix="vaebin-apptainer-", dir="/var/tmp"))
    try:
        workspace.chmod(0o755)
        prebuilt = os.environ.get("VAEBIN_SIF")
        if prebuilt:
            # A SIF built before (e.g. by hand from the same image): skips both builds. It must
            # be readable by the user.
            path = Path(prebuilt).resolve()
            timings: dict[str, float] = {}
        else:
            timings = _build_sif(workspace)
            path = workspace / "vaebin-rs.sif"
            path.chmod(0o644)
        os.chown(workspace, entry.pw_uid, entry.pw_gid)
        _say(
            request,
            f"{path}: {path.stat().st_size / 1e9:.2f} GB"
            + "".join(f", {step} {seconds:.0f} s" for step, seconds in timings.items()),
        )
        yield Sif(path, workspace, home, timings)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def _user_folder(sif: Sif, name: str) -> Path:
    folder = sif.workspace / name
    folder.mkdir()
    entry = pwd.getpwnam(USER)
    os.chown(folder, entry.pw_uid, entry.pw_gid)
    return folder


def test_sif_labels_name_the_package_version(sif: Sif) -> None:
    inspected = subprocess.run(
        [APPTAINER, "inspect", "--labels", str(sif.path)], capture_output=True, text=True
    )
    assert inspected.returncode == 0, inspected.stderr
    assert f"org.opencontainers.image.version: {vaebin.__version__}" in inspected.stdout
    assert "org.opencontainers.image.title: vaebin-rs" in inspected.stdout


def test_version_as_an_ordinary_user_equals_the_host_cli(
    sif: Sif, request: pytest.FixtureRequest
) -> None:
    folder = _user_folder(sif, "version")
    started = time.monotonic()
    command = ("apptainer", "--debug", "exec", sif.path, "vaebin-rs", "--version")
    inside = _as_user(*command, cwd=folder, home=sif.home)
    first_exec = time.monotonic() - started
    assert inside.returncode == 0, inside.stderr[-3000:]
    host = subprocess.run([str(cli_path()), "--version"], capture_output=True, text=True)
    expected = f"vaebin-rs {vaebin.__version__} (core {vaebin.core_version})\n"
    assert inside.stdout == host.stdout == expected
    # With squashfuse (Debian's, installed by .ci/install-apptainer.sh) Apptainer mounts the SIF
    # instead of copying all of it into a temporary sandbox on every run.
    mounted = "squashfuse" in inside.stderr
    converted = "Converting SIF file to temporary sandbox" in inside.stderr
    _say(
        request,
        f"first exec as {USER}: {first_exec:.1f} s "
        f"({'squashfuse mount' if mounted else 'extracted to a temporary sandbox'})",
    )
    if shutil.which("squashfuse_ll") or shutil.which("squashfuse"):
        assert mounted and not converted, inside.stderr[-3000:]


def test_test_section_passes_as_an_ordinary_user(sif: Sif) -> None:
    folder = _user_folder(sif, "test-section")
    result = _as_user("apptainer", "test", sif.path, cwd=folder, home=sif.home)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"vaebin-rs {vaebin.__version__} (core {vaebin.core_version})" in result.stdout


def _bin_command(data: Path, outdir: Path) -> list[str]:
    return [
        "vaebin-rs", "bin", "--contigs", str(data / "contigs.fna.gz"),
        "--bam", str(data / "sample1.bam"), "--bam", str(data / "sample2.bam"),
        "--outdir", str(outdir), "--threads", "2", "--seed", "1", "--epochs", "10",
        "--min-bin-size", "50000", "--bin-prefix", "toy", "--device", "cpu", "--quiet",
    ]  # fmt: skip


def _bins(outdir: Path) -> dict[str, bytes]:
    found = {
        path.name: gzip.decompress(path.read_bytes())
        for path in sorted((outdir / "bins").glob("*.fna.gz"))
    }
    # bins.tsv: the marker estimates too (the image's HMM file against the host's cache)
    for name in ("clusters.tsv", "bins.tsv"):
        found[name] = (outdir / name).read_bytes()
    return found


def test_bin_in_the_sif_equals_the_host_run(sif: Sif) -> None:
    folder = _user_folder(sif, "bin")
    data = folder / "data"
    cli = str(cli_path())
    simulated = subprocess.run(
        [cli, "simulate", "--preset", "toy", "--seed", "1", "--outdir", str(data), "--quiet"],
        capture_output=True,
        text=True,
    )
    assert simulated.returncode == 0, simulated.stderr
    for path in [data, *data.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    host = subprocess.run(
        [cli, *_bin_command(data, folder / "host")[1:]], capture_output=True, text=True
    )
    assert host.returncode == 0, host.stderr
    inside = _as_user(
        "apptainer", "exec", sif.path, *_bin_command(data, folder / "container"),
        cwd=folder, home=sif.home,
    )  # fmt: skip
    assert inside.returncode == 0, inside.stderr[-3000:]
    host_bins, container_bins = _bins(folder / "host"), _bins(folder / "container")
    assert len(host_bins) > 2, host_bins.keys()  # some bins besides clusters.tsv
    assert container_bins == host_bins


def _user_nextflow(sif: Sif) -> Path:
    """A copy of the Nextflow wrapper and jars the user can read (root's cache is private)."""
    wrapper = nextflow_wrapper()
    lib = Path(re.search(r"-cp '([^']+)/\*'", wrapper.read_text())[1])
    copy = sif.workspace / "nextflow"
    shutil.copytree(lib, copy / "lib")
    text = wrapper.read_text().replace(str(lib), str(copy / "lib"))
    (copy / "nextflow").write_text(text)
    for path in [copy, *copy.rglob("*")]:
        path.chmod(0o755 if path.is_dir() or path.name == "nextflow" else 0o644)
    return copy / "nextflow"


def test_pipeline_with_the_apptainer_profile_equals_the_local_run(
    sif: Sif, request: pytest.FixtureRequest
) -> None:
    nextflow = _user_nextflow(sif)
    folder = _user_folder(sif, "pipeline")
    # -profile local_image takes ./vaebin-rs.sif of the launch folder (conf/local_image.config).
    (folder / "vaebin-rs.sif").symlink_to(sif.path)
    # No vaebin-rs on the user's PATH: every task must run in the image.
    path = f"{Path(APPTAINER).parent}:/usr/local/bin:/usr/bin:/bin"
    assert shutil.which("vaebin-rs", path=path) is None
    started = time.monotonic()
    result = _as_user(
        "env", f"NXF_HOME={folder / 'nxf-home'}", "NXF_ANSI_LOG=false",
        nextflow, "-log", folder / ".nextflow.log", "run", MAIN_NF,
        "-profile", "test,apptainer,local_image",
        "-work-dir", folder / "work", "--outdir", folder / "results",
        "-with-trace", folder / "trace.txt",
        cwd=folder, home=sif.home, path=path,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    log = folder / ".nextflow.log"
    log_tail = log.read_text()[-4000:] if log.exists() else ""
    assert result.returncode == 0, result.stdout[-3000:] + log_tail
    _say(request, f"pipeline -profile test,apptainer,local_image as {USER}: {elapsed:.0f} s")
    runs = sorted((folder / "work").glob("*/*/.command.run"))
    assert len(runs) == 5
    for script in runs:
        sif_in_launch_folder = re.escape(str(folder / "vaebin-rs.sif"))
        assert re.search(rf"apptainer exec .*{sif_in_launch_folder}", script.read_text())
    in_image = comparable_results(folder / "results")
    assert any(name.startswith("binning/sim/bins/") for name in in_image)
    assert not differing(in_image, comparable_results(local_test_run() / "results"))
