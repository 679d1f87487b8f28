"""`vaebin-rs featurize` and `--version` through the installed console command."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vaebin
from vaebin import features

CLI = [os.path.join(os.path.dirname(sys.executable), "vaebin-rs")]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, check=False)


def test_version_names_package_and_core() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"vaebin-rs {vaebin.__version__} (core {vaebin.core_version})"


def test_featurize_writes_matrix_and_table(tmp_path: Path) -> None:
    contigs = tmp_path / "asm.fna.gz"
    contigs.write_bytes(gzip.compress(b">c1 x\nACGTACGTAAAC\n>c2\nNNNN\n>c3\nGGGGCCCCAT\nTT\n"))
    out = tmp_path / "out"
    result = run("featurize", "--contigs", str(contigs), "--outdir", str(out), "-k", "3")
    assert result.returncode == 0, result.stderr
    matrix = np.load(out / "composition.npy")
    assert matrix.shape == (3, 32)
    expected = features.composition(contigs, k=3).matrix
    np.testing.assert_array_equal(matrix, expected)
    assert (out / "contigs.tsv").read_text() == "name\tlength\nc1\t12\nc2\t4\nc3\t12\n"
    assert "read 3 records (28 bp); kept 3, skipped 0" in result.stderr
    assert "1 records have no valid 3-mer" in result.stderr
    assert "MB of sequence/s" in result.stderr
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_featurize_min_length_and_vamb_projection(tmp_path: Path) -> None:
    contigs = tmp_path / "asm.fa"
    contigs.write_text(">long\n" + "ACGGT" * 100 + "\n>short\nACGT\n")
    out = tmp_path / "o"
    result = run(
        "featurize",
        "--contigs",
        str(contigs),
        "--outdir",
        str(out),
        "--min-contig-len",
        "100",
        "--vamb-projection",
        "--threads",
        "1",
    )
    assert result.returncode == 0, result.stderr
    assert np.load(out / "composition.npy").shape == (1, 136)
    projected = np.load(out / "composition_vamb103.npy")
    np.testing.assert_allclose(
        projected, features.project_tetranucleotides(np.load(out / "composition.npy")), rtol=1e-6
    )
    assert (out / "contigs.tsv").read_text() == "name\tlength\nlong\t500\n"
    assert "kept 1, skipped 1 shorter than 100 bp" in result.stderr


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (None, [], "{path}: no such file"),
        (b"", [], "{path}: contains no sequences (empty file)"),
        (b">a\nACGT\n>a\nACGT\n", [], "{path}: record 2: duplicate sequence name 'a'"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", [], "{path}: record 1: not FASTA or FASTQ"),
        (b">a\nACGT\n", ["--min-contig-len", "10"], "{path}: no record of at least 10 bp"),
    ],
)
def test_featurize_errors_are_one_line(
    tmp_path: Path, content: bytes | None, extra: list[str], message: str
) -> None:
    path = tmp_path / "in.fa"
    if content is not None:
        path.write_bytes(content)
    out = tmp_path / "out"
    result = run("featurize", "--contigs", str(path), "--outdir", str(out), *extra)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("vaebin-rs: error: " + message.format(path=path))
    assert "Traceback" not in result.stderr
    assert not (out / "composition.npy").exists()


def test_featurize_truncated_gzip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    text = "".join(f">r{i}\n{''.join(rng.choice(list('ACGT'), 500))}\n" for i in range(400))
    data = gzip.compress(text.encode())
    path = tmp_path / "cut.fa.gz"
    path.write_bytes(data[:-40])
    result = run("featurize", "--contigs", str(path), "--outdir", str(tmp_path / "o"))
    assert result.returncode == 1
    assert "truncated gzip" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "composition.npy").exists()


def test_bad_k_is_a_usage_error(tmp_path: Path) -> None:
    result = run("featurize", "--contigs", "x.fa", "--outdir", str(tmp_path), "-k", "9")
    assert result.returncode == 2
    assert "Invalid value for '-k'" in result.stderr
