"""A failure tells the user whether the input or vaebin-rs is at fault, in one line.

Bad input: `vaebin-rs: error: <file>: <problem>`, exit 1 (2 for a wrong command line). A bug - a
plain Python exception or a Rust panic (PyO3's PanicException, a BaseException) - one line naming
the exception and where to report it, exit 70; the traceback only with --debug / VAEBIN_DEBUG.
"""

from __future__ import annotations

import email.message
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from vaebin import _cli_errors, _core
from vaebin.cli import main
from vaebin.pipeline import ContigFeatures, save_features

PREFIX = "vaebin-rs: error: "
BUG = PREFIX + "internal error (a bug in vaebin-rs, not in your input): "

# Runs the CLI with the composition kernel replaced by a real Rust panic; every command that
# reads an assembly goes through `_core.composition_arrays`.
PANIC_SHIM = (
    "import sys; from vaebin import _core, cli; "
    "_core.composition_arrays = lambda *a, **k: _core._panic_for_tests('index 7 out of range'); "
    "sys.argv = ['vaebin-rs', *sys.argv[1:]]; cli.main()"
)


def _where() -> str:
    url = _cli_errors.issue_tracker()
    return f"at {url}" if url else "to the vaebin-rs maintainers"


def _bug_line(kind: str, message: str) -> str:
    return (
        f"{BUG}{kind}: {message} (please report it {_where()} with the command line; "
        "--debug or VAEBIN_DEBUG=1 shows the traceback)"
    )


@pytest.fixture
def contigs(tmp_path: Path) -> Path:
    path = tmp_path / "contigs.fna"
    path.write_text(">c1\n" + "ACGTTGCA" * 40 + "\n>c2\n" + "GGCATTAC" * 40 + "\n")
    return path


def _run_panicking(args: list[str], env_debug: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "VAEBIN_DEBUG"}
    if env_debug is not None:
        env["VAEBIN_DEBUG"] = env_debug
    return subprocess.run(
        [sys.executable, "-c", PANIC_SHIM, *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_a_panic_is_a_base_exception_the_cli_still_recognises() -> None:
    with pytest.raises(BaseException) as caught:
        _core._panic_for_tests("boom")
    assert not isinstance(caught.value, Exception)
    assert _cli_errors.is_panic(caught.value)
    assert _cli_errors.handles(caught.value)
    assert not _cli_errors.is_user_error(caught.value)


@pytest.mark.parametrize("env_debug", [None, "0", ""])
def test_a_rust_panic_is_one_line_naming_a_bug(
    contigs: Path, tmp_path: Path, env_debug: str | None
) -> None:
    outdir = tmp_path / "out"
    run = _run_panicking(
        ["featurize", "--contigs", str(contigs), "--outdir", str(outdir)], env_debug
    )
    assert run.returncode == _cli_errors.EXIT_BUG == 70
    assert run.stderr.splitlines() == [_bug_line("PanicException", "index 7 out of range")]
    assert "Traceback" not in run.stderr and "panicked" not in run.stderr
    assert not (outdir / "composition.npy").exists()


@pytest.mark.parametrize(
    ("flag", "env_debug"), [(["--debug"], None), ([], "1")], ids=["flag", "env"]
)
def test_debug_shows_the_traceback_and_the_panic_site(
    contigs: Path, tmp_path: Path, flag: list[str], env_debug: str | None
) -> None:
    args = [*flag, "featurize", "--contigs", str(contigs), "--outdir", str(tmp_path / "out")]
    run = _run_panicking(args, env_debug)
    assert run.returncode == 70
    assert "Traceback (most recent call last):" in run.stderr
    assert "pyo3_runtime.PanicException: index 7 out of range" in run.stderr
    # Rust's own hook names the source line of the panic.
    assert "panicked at rust/src/lib.rs" in run.stderr
    assert run.stderr.splitlines()[-1] == _bug_line("PanicException", "index 7 out of range")


def _invoke(args: list[str | Path], monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[str]]:
    monkeypatch.delenv("VAEBIN_DEBUG", raising=False)
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert isinstance(result.exception, SystemExit | None), result.exception
    # --debug turns debugging on for the process only while the command runs.
    assert "VAEBIN_DEBUG" not in os.environ
    return result.exit_code, result.stderr.splitlines()


def test_a_python_bug_is_one_line_naming_a_bug(
    contigs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        return 1 // 0  # type: ignore[return-value]

    monkeypatch.setattr(_core, "composition_arrays", broken)
    code, lines = _invoke(
        ["featurize", "--contigs", contigs, "--outdir", tmp_path / "out"], monkeypatch
    )
    assert (code, lines) == (
        70,
        [_bug_line("ZeroDivisionError", "integer division or modulo by zero")],
    )


def test_a_value_error_from_library_code_is_a_bug_not_bad_input(
    contigs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("operands could not be broadcast\ntogether")

    monkeypatch.setattr(_core, "composition_arrays", broken)
    code, lines = _invoke(
        ["featurize", "--contigs", contigs, "--outdir", tmp_path / "out"], monkeypatch
    )
    assert (code, lines) == (
        70,
        [_bug_line("ValueError", "operands could not be broadcast together")],
    )


def test_the_debug_flag_adds_the_traceback_of_a_python_bug(
    contigs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("missing")

    monkeypatch.setattr(_core, "composition_arrays", broken)
    code, lines = _invoke(
        ["--debug", "featurize", "--contigs", contigs, "--outdir", tmp_path / "out"], monkeypatch
    )
    assert code == 70
    assert lines[0] == "Traceback (most recent call last):"
    assert "KeyError: 'missing'" in lines
    assert lines[-1] == _bug_line("KeyError", "'missing'")


def test_ctrl_c_is_one_line_and_exit_130(
    contigs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_core, "composition_arrays", interrupted)
    code, lines = _invoke(
        ["featurize", "--contigs", contigs, "--outdir", tmp_path / "out"], monkeypatch
    )
    assert (code, lines) == (130, ["vaebin-rs: interrupted"])


def _features(folder: Path, n: int = 12) -> Path:
    rng = np.random.default_rng(1)
    save_features(
        folder,
        ContigFeatures(
            names=np.array([f"c{i}" for i in range(n)]),
            lengths=np.full(n, 5000),
            composition=rng.random((n, 136)).astype(np.float32),
            depths=rng.random((n, 2)) + 1,
            sample_names=["s1", "s2"],
        ),
    )
    return folder


def _damaged_npy(tmp_path: Path) -> tuple[list[str | Path], str]:
    folder = _features(tmp_path / "features")
    (folder / "composition.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    args = ["train", "--features", folder, "--outdir", tmp_path / "out"]
    return args, f"{folder / 'composition.npy'}: not a readable .npy array"


def _bad_length_column(tmp_path: Path) -> tuple[list[str | Path], str]:
    folder = _features(tmp_path / "features")
    (folder / "contigs.tsv").write_text("name\tlength\nc1\tlong\n")
    args = ["train", "--features", folder, "--outdir", tmp_path / "out"]
    return args, f"{folder / 'contigs.tsv'}: not a name<TAB>length table"


def _truth_length_not_a_number(tmp_path: Path) -> tuple[list[str | Path], str]:
    truth = tmp_path / "truth.binning"
    truth.write_text("@Version:0.9.1\n@@SEQUENCEID\tBINID\t_LENGTH\nc1\tg1\t100\nc2\tg1\tlots\n")
    bins = tmp_path / "clusters.tsv"
    bins.write_text("clustername\tcontigname\nb1\tc1\n")
    args = ["evaluate", "--truth", truth, "--bins", bins]
    return args, f"{truth}: line 4: _LENGTH 'lots' is not a whole number"


def _non_finite_latent(tmp_path: Path) -> tuple[list[str | Path], str]:
    latent = tmp_path / "latent"
    latent.mkdir()
    np.save(latent / "latent.npy", np.full((3, 4), np.nan, dtype=np.float32))
    (latent / "latent_contigs.tsv").write_text("name\tlength\nc1\t5000\nc2\t5000\nc3\t5000\n")
    contigs = tmp_path / "c.fna"
    contigs.write_text("".join(f">c{i}\n{'ACGT' * 1250}\n" for i in (1, 2, 3)))
    args = ["cluster", "--latent", latent, "--contigs", contigs, "--outdir", tmp_path / "out"]
    return args, "latent means contain NaN or infinite values"


def _cuda_without_a_gpu(tmp_path: Path) -> tuple[list[str | Path], str]:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    folder = _features(tmp_path / "features")
    args = ["train", "--features", folder, "--outdir", tmp_path / "out", "--device", "cuda"]
    return args, "device cuda was requested but PyTorch sees no usable CUDA GPU"


@pytest.mark.parametrize(
    "case",
    [
        _damaged_npy,
        _bad_length_column,
        _truth_length_not_a_number,
        _non_finite_latent,
        _cuda_without_a_gpu,
    ],
)
def test_bad_input_is_one_user_error_line(
    case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args, expected = case(tmp_path)
    code, lines = _invoke(args, monkeypatch)
    assert code == _cli_errors.EXIT_INPUT_ERROR == 1
    assert len(lines) == 1, lines
    assert lines[0].startswith(PREFIX + expected), lines[0]
    assert not (tmp_path / "out" / "model.pt").exists()


def test_a_wrong_command_line_is_click_usage_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    code, lines = _invoke(["featurize", "--outdir", "x"], monkeypatch)
    assert code == 2
    assert lines[-1] == "Error: Missing option '--contigs'."


def test_the_issue_tracker_comes_from_the_project_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    fake = email.message.Message()
    fake["Project-URL"] = "Homepage, https://example.org/vaebin"
    fake["Project-URL"] = "Issues, https://example.org/vaebin/issues"
    monkeypatch.setattr(importlib.metadata, "metadata", lambda name: fake)
    assert _cli_errors.issue_tracker() == "https://example.org/vaebin/issues"
    assert "please report it at https://example.org/vaebin/issues" in _cli_errors.describe_bug(
        RuntimeError("x")
    )
    del fake["Project-URL"]
    assert _cli_errors.issue_tracker() is None


def test_running_out_of_memory_is_the_environment_not_a_bug(
    contigs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class OutOfMemoryError(RuntimeError):  # the name torch.cuda.OutOfMemoryError goes by
        pass

    for error, detail in (
        (MemoryError(), ""),
        (
            OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore"),
            " (CUDA out of memory. Tried to allocate 2.00 GiB)",
        ),
    ):

        def exhausted(*args: object, error: BaseException = error, **kwargs: object) -> None:
            raise error

        monkeypatch.setattr(_core, "composition_arrays", exhausted)
        code, lines = _invoke(
            ["featurize", "--contigs", contigs, "--outdir", tmp_path / "out"], monkeypatch
        )
        assert (code, lines) == (
            1,
            [
                f"{PREFIX}out of memory{detail}; "
                "try fewer --threads, a smaller --batch-size or --device cpu"
            ],
        )


def test_bad_input_stays_one_line_when_debugging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "absent.fna"
    code, lines = _invoke(
        ["--debug", "featurize", "--contigs", missing, "--outdir", tmp_path / "out"], monkeypatch
    )
    assert (code, lines) == (1, [f"{PREFIX}{missing}: no such file"])
