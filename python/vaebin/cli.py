"""The `vaebin-rs` command line: argument parsing, logging and calls into the library."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import click

from vaebin import __version__, core_version
from vaebin.errors import VaebinError

log = logging.getLogger("vaebin")

EXIT_INPUT_ERROR = 1
EXIT_INTERRUPTED = 130


class VaebinGroup(click.Group):
    """Turns every expected failure into one line on stderr and a non-zero exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except VaebinError as error:
            _fail(str(error))
        except (OSError, ValueError) as error:
            _fail(_describe(error))
        except KeyboardInterrupt:
            click.echo("vaebin-rs: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror or error}"
    return str(error)


def _fail(message: str) -> None:
    click.echo(f"vaebin-rs: error: {message}", err=True)
    sys.exit(EXIT_INPUT_ERROR)


def _setup_logging(quiet: bool) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s vaebin-rs %(levelname)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


VERSION_TEXT = f"vaebin-rs {__version__} (core {core_version})"

threads_option = click.option(
    "--threads",
    "-t",
    type=click.IntRange(min=1),
    default=None,
    help="Worker threads [default: all cores].",
)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="Only print warnings and errors.")


@click.group(cls=VaebinGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, message=VERSION_TEXT)
def main() -> None:
    """vaebin-rs: metagenomic binning with a variational autoencoder.

    Composition and coverage features are computed by a parallel Rust core; a PyTorch VAE embeds
    them and HDBSCAN clusters the embedding into genome bins.
    """


@main.command()
@click.option(
    "--contigs",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Contigs or reads: FASTA/FASTQ, plain, gzip or bgzip.",
)
@click.option(
    "--outdir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Output folder.",
)
@click.option(
    "-k", "kmer_size", type=click.IntRange(1, 6), default=4, show_default=True, help="k-mer size."
)
@click.option(
    "--min-contig-len",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Leave out records shorter than this many bp.",
)
@click.option(
    "--vamb-projection",
    is_flag=True,
    help="Also write VAMB's 103-dimensional tetranucleotide projection (k=4 only).",
)
@threads_option
@quiet_option
def featurize(
    contigs: Path,
    outdir: Path,
    kmer_size: int,
    min_contig_len: int,
    vamb_projection: bool,
    threads: int | None,
    quiet: bool,
) -> None:
    """Compute canonical k-mer composition: DIR/composition.npy and DIR/contigs.tsv."""
    from vaebin import features, io

    _setup_logging(quiet)
    if vamb_projection and kmer_size != 4:
        raise click.BadParameter("needs -k 4", param_hint="--vamb-projection")
    started = time.perf_counter()
    result = features.composition(contigs, k=kmer_size, min_length=min_contig_len, threads=threads)
    elapsed = time.perf_counter() - started
    if result.records_kept == 0:
        raise VaebinError(f"{contigs}: no record of at least {min_contig_len} bp")
    io.save_npy(outdir / "composition.npy", result.matrix)
    if vamb_projection:
        io.save_npy(
            outdir / "composition_vamb103.npy", features.project_tetranucleotides(result.matrix)
        )
    io.write_contig_table(outdir / "contigs.tsv", result.names, result.lengths)
    log.info(
        "%s: read %d records (%d bp); kept %d, skipped %d shorter than %d bp",
        contigs,
        result.records,
        result.bases,
        result.records_kept,
        result.records_too_short,
        min_contig_len,
    )
    without_kmers = int(result.no_kmer_rows.sum())
    if without_kmers:
        log.warning(
            "%d records have no valid %d-mer (their rows are all zero)", without_kmers, kmer_size
        )
    log.info(
        "composition k=%d: %d x %d matrix in %.2f s (%.1f MB of sequence/s)",
        kmer_size,
        result.matrix.shape[0],
        result.matrix.shape[1],
        elapsed,
        result.bases / 1e6 / max(elapsed, 1e-9),
    )
