"""The pipeline through a real one-node SLURM cluster on localhost (`-profile test,slurm`).

Opt-in (`VAEBIN_SLURM_TESTS=1`, set by .ci/run) because it starts daemons: munged with a key made
for the test, slurmctld and slurmd (Debian's SLURM 22.05; .ci/install-slurm.sh installs them),
each with its own configuration, ports, socket, state, spool and log folders under one temporary
folder, so nothing clashes with a SLURM or munge already on the machine. No cgroups
(proctrack/linuxproc, task/none) and no slurmdbd: finished jobs are recorded by jobcomp/filetxt,
which `sacct --completion` reads. The daemons are stopped when the module's tests end, failed or
not.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pipeline_runs import (
    cli_path,
    comparable_results,
    differing,
    local_test_run,
    run_pipeline,
    task_env,
)

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "sacct", "scancel", "java")
SEARCH_PATH = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
pytestmark = [
    pytest.mark.skipif(
        os.environ.get("VAEBIN_SLURM_TESTS") != "1",
        reason="starts a one-node SLURM cluster; set VAEBIN_SLURM_TESTS=1 "
        "(.ci/install-slurm.sh installs SLURM and munge)",
    ),
    pytest.mark.skipif(
        any(shutil.which(tool, path=SEARCH_PATH) is None for tool in DAEMONS),
        reason=f"needs {', '.join(DAEMONS)} (.ci/install-slurm.sh)",
    ),
]

NODE = "vaebin-node"
PARTITION = "vaebin-test"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _sbin(tool: str) -> str:
    found = shutil.which(tool, path=SEARCH_PATH)
    assert found, tool
    return found


def _node_hardware() -> tuple[int, int]:
    """CPUs and memory (MB) that slurmd finds on this machine (`slurmd -C`)."""
    found = subprocess.run([_sbin("slurmd"), "-C"], capture_output=True, text=True, check=True)
    cpus = int(re.search(r"\bCPUs=(\d+)", found.stdout)[1])
    memory = int(re.search(r"\bRealMemory=(\d+)", found.stdout)[1])
    return cpus, memory


@dataclass
class Cluster:
    folder: Path
    conf: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]

    def log(self, daemon: str) -> str:
        path = self.folder / "log" / f"{daemon}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(command), env=self.env, capture_output=True, text=True, timeout=60, check=False
        )


def _write_config(folder: Path, cpus: int, memory_mb: int) -> Path:
    user = getpass.getuser()
    host = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(
        f"""\
# One-node cluster of tests/test_slurm.py: everything under {folder}
ClusterName=vaebintest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
AuthInfo=socket={folder}/munge/munge.socket
CredType=cred/munge
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/log/slurmctld.log
SlurmdLogFile={folder}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
# No cgroups: processes are tracked through /proc, tasks are not confined.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No slurmdbd: finished jobs go to a text file that `sacct --completion` reads.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={folder}/log/jobcomp.txt
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
# Not a default partition: a job that names none is refused, so the pipeline must name it
# (--slurm_queue).
PartitionName={PARTITION} Nodes={NODE} Default=NO MaxTime=INFINITE State=UP
"""
    )
    return conf


def _stop(processes: dict[str, subprocess.Popen[bytes]], cluster_env: dict[str, str]) -> None:
    """Cancel leftover jobs, then stop the daemons in reverse order of start."""
    if "slurmctld" in processes and processes["slurmctld"].poll() is None:
        subprocess.run(
            [shutil.which("scancel") or "scancel", "--user", getpass.getuser()],
            env=cluster_env,
            capture_output=True,
            timeout=30,
            check=False,
        )
    for name in reversed(list(processes)):
        process = processes[name]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # A short path: the munge socket's path must fit in a sockaddr_un (108 bytes).
    folder = Path(tempfile.mkdtemp(prefix="vaebin-slurm-", dir="/tmp"))
    folder.chmod(0o755)
    for sub in ("state", "spool", "log", "munge"):
        (folder / sub).mkdir(mode=0o755)
    (folder / "key").mkdir(mode=0o700)
    key = folder / "key" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    cpus, memory_mb = _node_hardware()
    conf = _write_config(folder, cpus, memory_mb)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    munge = folder / "munge"
    commands = {
        "munged": [
            _sbin("munged"), "--foreground", f"--socket={munge}/munge.socket",
            f"--key-file={key}", f"--pid-file={munge}/munged.pid",
            f"--log-file={folder}/log/munged.log", f"--seed-file={munge}/munged.seed",
        ],
        "slurmctld": [_sbin("slurmctld"), "-D", "-f", str(conf)],
        "slurmd": [_sbin("slurmd"), "-D", "-f", str(conf), "-N", NODE],
    }  # fmt: skip
    try:
        for name, command in commands.items():
            with (folder / "log" / f"{name}.out").open("wb") as output:
                processes[name] = subprocess.Popen(
                    command, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=output
                )
            if name == "munged":
                _wait_for(lambda: (munge / "munge.socket").exists(), 30, "munged's socket", folder)
        cluster = Cluster(folder, conf, env, processes)

        def node_idle() -> bool:
            for name, process in processes.items():
                if process.poll() is not None:
                    raise AssertionError(f"{name} exited ({process.returncode})")
            state = cluster.run("sinfo", "-h", "-N", "-n", NODE, "-p", PARTITION, "-o", "%T")
            return state.stdout.strip() == "idle"

        _wait_for(node_idle, 90, f"node {NODE} idle", folder)
        yield cluster
    finally:
        _stop(processes, env)
        stopped = all(process.poll() is not None for process in processes.values())
        if stopped:
            shutil.rmtree(folder, ignore_errors=True)


def _wait_for(condition: Callable[[], bool], seconds: float, what: str, folder: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    logs = "\n".join(
        f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}"
        for path in sorted((folder / "log").glob("*"))
    )
    raise AssertionError(f"timed out after {seconds} s waiting for {what}\n{logs}")


def test_cluster_runs_a_batch_job(cluster: Cluster, tmp_path: Path) -> None:
    output = tmp_path / "job.out"
    submitted = cluster.run(
        "sbatch", "--parsable", "-p", PARTITION, "-c", "1", "-o", str(output),
        "--wrap", "echo job $SLURM_JOB_ID on $SLURMD_NODENAME",
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip().split(";")[0]
    _wait_for(lambda: output.exists() and output.read_text(), 60, f"job {job}", cluster.folder)
    assert output.read_text() == f"job {job} on {NODE}\n"


@pytest.fixture(scope="module")
def slurm_run(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`-profile test,slurm` on the cluster, polled every 2 s rather than the profile's 30 s."""
    if cli_path() is None:
        pytest.fail("the `vaebin-rs` command is not installed (.ci/setup)")
    folder = tmp_path_factory.mktemp("slurm-run")
    fast = folder / "fast-polling.config"
    fast.write_text(
        "executor {\n"
        "    pollInterval      = '2 sec'\n"
        "    queueStatInterval = '5 sec'\n"
        "    submitRateLimit   = '20/1s'\n"
        "}\n"
    )
    run_pipeline(
        folder,
        "-profile", "test,slurm",
        "-c", str(fast),
        "--slurm_queue", PARTITION,
        # `--slurm_options --comment=...` would read as two options: the value goes after `=`.
        "--slurm_options=--comment=vaebin-rs-test",
        env=task_env({"SLURM_CONF": str(cluster.conf)}),
    )  # fmt: skip
    return folder


def _trace(folder: Path) -> list[dict[str, str]]:
    lines = (folder / "trace.txt").read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]


def test_every_task_ran_as_a_slurm_job(cluster: Cluster, slurm_run: Path) -> None:
    tasks = _trace(slurm_run)
    processes = sorted(task["process"].split(":")[-1] for task in tasks)
    assert processes == [
        "VAEBIN_BIN", "VAEBIN_COVERAGE", "VAEBIN_COVERAGE", "VAEBIN_MERGEDEPTHS", "VAEBIN_SIMULATE"
    ]  # fmt: skip
    assert {task["status"] for task in tasks} == {"COMPLETED"}
    # native_id is the SLURM job id Nextflow got back from sbatch.
    job_ids = {task["native_id"]: task for task in tasks}
    assert all(re.fullmatch(r"\d+", job) for job in job_ids), job_ids.keys()
    # The controller's record of finished jobs (jobcomp/filetxt through `sacct --completion`).
    completed = cluster.run(
        "sacct", "--completion", "--noheader", "--parsable2",
        "--format", "JobID,JobName,Partition,NodeList,State,ExitCode",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    records = {line.split("|")[0]: line.split("|") for line in completed.stdout.splitlines()}
    for job, task in job_ids.items():
        assert job in records, f"job {job} ({task['name']}) not in the controller's records"
        _, name, partition, node, state, exit_code = records[job]
        assert name == "nf-" + re.sub(r"[^\w().-]", "_", task["name"])
        assert (partition, node, state, exit_code) == (PARTITION, NODE, "COMPLETED", "0:0")


def test_jobs_asked_for_what_the_test_profile_allows(slurm_run: Path) -> None:
    scripts = sorted((slurm_run / "work").glob("*/*/.command.run"))
    assert len(scripts) == 5
    for script in scripts:
        directives = [
            line.removeprefix("#SBATCH ")
            for line in script.read_text().splitlines()
            if line.startswith("#SBATCH ")
        ]
        # At most the two CPUs, 6 GB and 1 h of conf/test.config, on the partition asked for
        # (Nextflow leaves out `-c` for one CPU).
        cpus = [int(d.split()[1]) for d in directives if d.startswith("-c ")]
        assert cpus in ([], [2]), directives
        memory = next(d.split()[1] for d in directives if d.startswith("--mem "))
        assert memory == "6144M", directives
        assert "-t 01:00:00" in directives
        assert f"-p {PARTITION}" in directives
        assert "--comment=vaebin-rs-test" in directives


def test_slurm_run_publishes_the_local_runs_results(slurm_run: Path) -> None:
    on_cluster = comparable_results(slurm_run / "results")
    local = comparable_results(local_test_run() / "results")
    assert any(name.startswith("binning/sim/bins/") for name in on_cluster)
    assert not differing(on_cluster, local)
