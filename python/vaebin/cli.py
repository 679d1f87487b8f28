"""The `vaebin-rs` command line: argument parsing, logging and calls into the library."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from vaebin import __version__, _cli_errors, core_version, features, train_config
from vaebin.errors import VaebinError

log = logging.getLogger("vaebin")


class VaebinGroup(click.Group):
    """Turns every failure into one line on stderr: bad input, or a bug (see `_cli_errors`)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BaseException as error:
            if not _cli_errors.handles(error):
                raise
            _cli_errors.report(error, debug=bool(ctx.params.get("debug")))


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
@click.option(
    "--debug",
    is_flag=True,
    help="On a bug (not bad input), print the full traceback (also VAEBIN_DEBUG=1).",
)
def main(debug: bool) -> None:
    """vaebin-rs: metagenomic binning with a variational autoencoder.

    Composition and coverage features are computed by a parallel Rust core; a PyTorch VAE embeds
    them and HDBSCAN clusters the embedding into genome bins.
    """
    if debug:
        click.get_current_context().call_on_close(_cli_errors.enable_debug())


def _bams_from(bams: tuple[Path, ...], bamdir: Path | None) -> tuple[Path, ...]:
    if bamdir is None:
        return bams
    found = tuple(sorted(bamdir.glob("*.bam")))
    if not found:
        raise VaebinError(f"{bamdir}: no *.bam files in this folder")
    return bams + found


def _depth_source(
    bams: tuple[Path, ...], bamdir: Path | None, depth: Path | None
) -> tuple[Path, ...]:
    all_bams = _bams_from(bams, bamdir)
    if bool(all_bams) == (depth is not None):
        raise click.UsageError("give the abundances either as --bam/--bamdir or as --depth")
    return all_bams


contigs_option = click.option(
    "--contigs",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Assembly: FASTA, plain, gzip or bgzip.",
)
bam_options = [
    click.option(
        "--bam",
        "bams",
        multiple=True,
        type=click.Path(path_type=Path, dir_okay=False),
        help="Sorted BAM of one sample's reads mapped to the contigs (repeat per sample).",
    ),
    click.option(
        "--bamdir",
        type=click.Path(path_type=Path, file_okay=False, exists=True),
        default=None,
        help="Folder whose *.bam files are the samples.",
    ),
    click.option(
        "--depth",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="MetaBAT2-style depth table instead of BAMs.",
    ),
]


def _with_bam_options(function: Any) -> Any:
    for option in reversed(bam_options):
        function = option(function)
    return function


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
@_with_bam_options
@threads_option
@quiet_option
def featurize(
    contigs: Path,
    outdir: Path,
    kmer_size: int,
    min_contig_len: int,
    vamb_projection: bool,
    bams: tuple[Path, ...],
    bamdir: Path | None,
    depth: Path | None,
    threads: int | None,
    quiet: bool,
) -> None:
    """Compute canonical k-mer composition: DIR/composition.npy and DIR/contigs.tsv.

    With --bam/--bamdir/--depth, also the depth per sample (DIR/depths.npy, DIR/samples.txt):
    the input of `vaebin-rs train`.
    """
    from vaebin.pipeline import run_featurize

    _setup_logging(quiet)
    if vamb_projection and kmer_size != 4:
        raise click.BadParameter("needs -k 4", param_hint="--vamb-projection")
    all_bams = _bams_from(bams, bamdir)
    if all_bams and depth is not None:
        raise click.UsageError("give the abundances either as --bam/--bamdir or as --depth")
    run_featurize(
        contigs,
        outdir,
        kmer_size=kmer_size,
        min_length=min_contig_len,
        bams=all_bams,
        depth_table=depth,
        vamb_projection=vamb_projection,
        threads=threads,
    )


# ---------------------------------------------------------------------------------------------
# binning: options shared by `bin`, `train` and `cluster`, with defaults from the stage dataclasses


def _train_options(function: Any) -> Any:
    from vaebin.train_config import TrainConfig

    defaults = TrainConfig()
    options = [
        click.option(
            "--preset",
            type=click.Choice(["default", "article"]),
            default="default",
            show_default=True,
            help="Model preset: the tuned default, or the article's baseline VAE.",
        ),
        click.option(
            "--epochs",
            type=click.IntRange(min=1),
            default=None,
            help="Training epochs [default: 100, 200 with one sample; article preset 50]; "
            "the batch size doubles at 8, 25, 50 and 75 % of them.",
        ),
        click.option(
            "--batch-size",
            type=click.IntRange(min=1),
            default=None,
            help="Initial batch size [default: preset's].",
        ),
        click.option(
            "--seed", type=int, default=defaults.seed, show_default=True, help="Random seed."
        ),
        click.option(
            "--device",
            type=click.Choice(["auto", "cpu", "cuda"]),
            default=defaults.device,
            show_default=True,
            help="Where to train: a CUDA GPU when present (auto), or as given.",
        ),
        click.option(
            "--min-contig-len",
            type=click.IntRange(min=1),
            default=2000,
            show_default=True,
            help="Contigs shorter than this are left out of binning (and reported).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


cluster_param_option = click.option(
    "--cluster-param",
    "cluster_params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set any clustering threshold by its ClusterConfig name (repeatable), e.g. "
    "merge_max_separation=3 or long_contig_bin_bp=none; applied after the options above. "
    "summary.json's cluster_steps says what each step did.",
)


def _cluster_options(function: Any) -> Any:
    from vaebin.cluster import ClusterConfig

    defaults = ClusterConfig()
    options = [
        click.option(
            "--min-bin-size",
            type=click.IntRange(min=0),
            default=defaults.min_bin_size,
            show_default=True,
            help="Drop bins smaller than this many bp.",
        ),
        click.option(
            "--min-cluster-size",
            type=click.IntRange(min=2),
            default=defaults.min_cluster_size,
            show_default=True,
            help="HDBSCAN min_cluster_size (contigs).",
        ),
        click.option(
            "--min-samples",
            type=click.IntRange(min=1),
            default=defaults.min_samples,
            show_default=True,
            help="HDBSCAN min_samples.",
        ),
        click.option(
            "--max-hdbscan-contigs",
            type=click.IntRange(min=0),
            default=defaults.max_hdbscan_contigs,
            show_default=True,
            help="HDBSCAN clusters at most this many contigs, the longest; each other contig "
            "joins the cluster of 4 of its 5 nearest clustered contigs (0: no limit).",
        ),
        click.option(
            "--cluster-selection",
            type=click.Choice(["eom", "leaf"]),
            default=defaults.cluster_selection_method,
            show_default=True,
            help="HDBSCAN cluster selection method.",
        ),
        click.option(
            "--recluster/--no-recluster",
            default=defaults.recluster,
            show_default=True,
            help="Cluster each large bin again and split it when it holds several dense parts.",
        ),
        click.option(
            "--split-min-separation",
            type=click.FloatRange(min=0),
            default=defaults.split_min_separation,
            show_default=True,
            help="Re-clustering splits a bin only into parts that lie this many times farther "
            "apart than their own contigs do (0: any dense parts).",
        ),
        click.option(
            "--split-linked-groups/--no-split-linked-groups",
            default=defaults.split_linked_groups,
            show_default=True,
            help="Re-clustering also splits off a group of a few contigs of bin size that lie "
            "as close together as a genome's contigs do, apart from the rest of the bin.",
        ),
        click.option(
            "--merge-same-depth/--no-merge-same-depth",
            default=defaults.merge_same_depth,
            show_default=True,
            help="Join two HDBSCAN clusters that lie close and have the same depth in every "
            "sample (3 or more samples): a genome HDBSCAN cut in two. Needs the depths "
            "(`cluster`: --features).",
        ),
        click.option(
            "--split-mixed-depth/--no-split-mixed-depth",
            default=defaults.split_mixed_depth,
            show_default=True,
            help="Split a bin in two when its contigs form two populations whose depths cross "
            "(each deeper than the other in some sample; 3 or more samples): strains of one "
            "species. Needs the depths (`cluster`: --features).",
        ),
        click.option(
            "--reassign-noise/--no-reassign-noise",
            default=defaults.reassign_noise,
            show_default=True,
            help="Give HDBSCAN noise contigs to a cluster when they lie within its own spread.",
        ),
        click.option(
            "--assign-leftovers/--no-assign-leftovers",
            default=defaults.assign_leftovers,
            show_default=True,
            help=(
                "Put an HDBSCAN noise contig in a bin when at least 4 of its 5 nearest binned "
                "contigs are in that bin; the others stay unbinned (clusters under "
                "--min-bin-size stay apart and are dropped)."
            ),
        ),
        click.option(
            "--group-leftovers/--no-group-leftovers",
            default=defaults.group_leftovers,
            show_default=True,
            help="Make a bin of HDBSCAN noise contigs that lie as close together as a genome's "
            "contigs do and add up to --min-bin-size (a genome in fewer contigs than "
            "--min-cluster-size).",
        ),
        click.option(
            "--split-separator",
            default=None,
            help=(
                "Multi-split binning: contig names are <sample><SEP><contig> "
                "(e.g. C for S1C12); bins are split per sample."
            ),
        ),
        click.option(
            "--bin-prefix",
            default=defaults.bin_prefix,
            show_default=True,
            help="Bins are named <prefix>.<n>.",
        ),
        cluster_param_option,
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _train_config(
    preset: str,
    epochs: int | None,
    batch_size: int | None,
    seed: int,
    device: str,
    threads: int | None,
    quiet: bool,
) -> Any:
    from vaebin.train_config import TrainConfig

    overrides: dict[str, object] = {
        "seed": seed,
        "device": device,
        "threads": threads,
        "quiet": quiet,
    }
    if epochs is not None:
        overrides["epochs"] = epochs
    if batch_size is not None:
        overrides["batch_size"] = batch_size
    return TrainConfig.for_preset(preset, **overrides)


# The parameters that _cluster_options adds to a command, passed on as one dict.
CLUSTER_PARAMETERS = (
    "min_bin_size",
    "min_cluster_size",
    "min_samples",
    "max_hdbscan_contigs",
    "cluster_selection",
    "recluster",
    "split_min_separation",
    "split_linked_groups",
    "merge_same_depth",
    "split_mixed_depth",
    "reassign_noise",
    "assign_leftovers",
    "group_leftovers",
    "split_separator",
    "bin_prefix",
)


def _cluster_config(options: dict[str, Any], threads: int | None) -> Any:
    """ClusterConfig from the values of the _cluster_options of a command."""
    from vaebin.cluster import ClusterConfig, with_settings

    values = {name: options.pop(name) for name in CLUSTER_PARAMETERS}
    settings = options.pop("cluster_params")
    # The options are the config's fields, but for one name and two "none" spellings.
    values["cluster_selection_method"] = values.pop("cluster_selection")
    values["max_hdbscan_contigs"] = values["max_hdbscan_contigs"] or None
    values["split_separator"] = values["split_separator"] or None
    return with_settings(ClusterConfig(**values, threads=threads or 1), settings)


@main.command("bin")
@contigs_option
@_with_bam_options
@click.option(
    "--outdir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Output folder.",
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Reuse a saved model.pt instead of training.",
)
@_train_options
@_cluster_options
@click.option(
    "--markers/--no-markers",
    default=None,
    help="Find single-copy marker genes (pyrodigal, pyhmmer) and estimate each bin's "
    "completeness and contamination in bins.tsv [default: on when the marker HMM file is "
    "found; see `vaebin-rs fetch-markers`].",
)
@click.option(
    "--markers-hmm",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Marker HMM file [default: $VAEBIN_MARKERS_HMM, else the cache of `fetch-markers`].",
)
@click.option(
    "--marker-gene-calling",
    type=click.Choice(["trained", "meta"]),
    default="trained",
    show_default=True,
    help="Gene calling for the markers: one Prodigal model trained on the longest 8 Mbp of "
    "the contigs, or Prodigal's metagenomic mode (50 models; 2.4x the CPU of the whole marker "
    "step, the same markers on 511 of 512 real contigs).",
)
@click.option(
    "--marker-filters/--no-marker-filters",
    default=True,
    show_default=True,
    help="Search each marker model only against the proteins its seeds pass on, with a "
    "stricter Forward filter (2.1-2.3x faster on five real sets, the same hits; docs/markers.md, "
    '"Search filters"); off: every protein through every model\'s HMMER pipeline.',
)
@click.option("--no-fasta", is_flag=True, help="Do not write bins/*.fna.gz and unbinned.fna.gz.")
@click.option("--plot", is_flag=True, help="Draw latent_umap.png (needs the plot extra).")
@threads_option
@quiet_option
def bin_command(
    contigs: Path,
    bams: tuple[Path, ...],
    bamdir: Path | None,
    depth: Path | None,
    outdir: Path,
    model_path: Path | None,
    preset: str,
    epochs: int | None,
    batch_size: int | None,
    seed: int,
    device: str,
    min_contig_len: int,
    markers: bool | None,
    markers_hmm: Path | None,
    marker_gene_calling: str,
    marker_filters: bool,
    no_fasta: bool,
    plot: bool,
    threads: int | None,
    quiet: bool,
    **cluster_options: Any,
) -> None:
    """Bin an assembly end to end: features, VAE, HDBSCAN, bins.

    Writes clusters.tsv, clusters.binning (CAMI), bins.tsv (bin sizes and marker-gene
    estimates), bins/<prefix>.<n>.fna.gz, unbinned.fna.gz, summary.json, model.pt, latent.npy
    and features/.
    """
    from vaebin.encode import EncodeConfig
    from vaebin.pipeline import BinRequest, run_bin

    _setup_logging(quiet)
    all_bams = _depth_source(bams, bamdir, depth)
    if plot:
        from vaebin.plot import plotting_available

        if not plotting_available():
            raise VaebinError(
                "--plot needs umap-learn and matplotlib: pip install 'vaebin-rs[plot]'"
            )
    request = BinRequest(
        contigs=contigs,
        outdir=outdir,
        bams=all_bams,
        depth_table=depth,
        model_path=model_path,
        threads=threads,
        write_fasta=not no_fasta,
        plot=plot,
        markers=markers,
        markers_hmm=markers_hmm,
        marker_gene_calling=marker_gene_calling,
        marker_filters=marker_filters,
    )
    summary = run_bin(
        request,
        EncodeConfig(min_contig_len=min_contig_len),
        _train_config(preset, epochs, batch_size, seed, device, threads, quiet),
        _cluster_config(cluster_options, threads),
    )
    counts = summary["counts"]
    log.info(
        "%d bins (%d contigs, %d bp) written to %s",
        counts["bins"],
        counts["binned_contigs"],
        counts["binned_bp"],
        outdir,
    )


@main.command("fetch-markers")
@click.option(
    "--cache",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Cache folder [default: ${XDG_CACHE_HOME:-~/.cache}/vaebin-rs/markers].",
)
@quiet_option
def fetch_markers(cache: Path | None, quiet: bool) -> None:
    """Download the marker-gene HMMs (SemiBin 2.6.0's marker.hmm, from PyPI) into a cache.

    Runs `python -m pip download` with this interpreter, checks the file's sha256 and prints its
    path. `bin` finds it there (or give --markers-hmm / $VAEBIN_MARKERS_HMM).
    """
    from vaebin import markers

    _setup_logging(quiet)
    path, downloaded = markers.fetch_markers(cache)
    log.info("%s %s", "downloaded" if downloaded else "already there:", path)
    click.echo(str(path))


@main.command("bin-reads")
@click.option(
    "--reads",
    "reads",
    required=True,
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Long reads of one sample (FASTQ or FASTA, plain/gzip/bgzip); repeat per sample.",
)
@click.option(
    "--outdir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Output folder.",
)
@click.option(
    "--preset",
    type=click.Choice(["default", "article"]),
    default="default",
    show_default=True,
    help="Model preset: the tuned default, or the article's baseline VAE.",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help=f"Training epochs [default: {train_config.READ_EPOCHS}; article preset 50].",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Initial batch size.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where to train: a CUDA GPU when present (auto), or as given.",
)
@click.option(
    "-k",
    "--kmer-size",
    type=int,
    default=15,
    show_default=True,
    help="k of the abundance k-mers (8-16).",
)
@click.option(
    "--composition-k", type=int, default=4, show_default=True, help="k of the composition (3 or 4)."
)
@click.option(
    "--histogram-bins",
    type=int,
    default=32,
    show_default=True,
    help="Bins of each k-mer count histogram.",
)
@click.option(
    "--bin-width", type=int, default=2, show_default=True, help="k-mer counts per histogram bin."
)
@click.option(
    "--histograms/--no-histograms",
    default=None,
    help="Give the VAE the k-mer count histograms beside composition and abundances "
    "[default: yes].",
)
@click.option(
    "--kmer-sampling",
    type=int,
    default=8,
    show_default=True,
    help="Count and look up 1 in this many k-mers (a power of two; 1: all).",
)
@click.option(
    "--min-read-len",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Reads shorter than this are left out of binning (and reported).",
)
@click.option(
    "--overlap-graph/--no-overlap-graph",
    default=True,
    show_default=True,
    help="Find which reads overlap which (shared k-mers); the smoothing and vote below use it.",
)
@click.option(
    "--graph-smoothing",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Rounds of averaging each read's VAE input features with its overlapping reads' (0: off).",
)
@click.option(
    "--latent-smoothing",
    type=click.IntRange(min=0),
    default=4,
    show_default=True,
    help="Rounds of averaging each read's latent position with its overlapping reads' before "
    "HDBSCAN (0: off).",
)
@click.option(
    "--graph-vote-rounds",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Rounds in which a read moves to the bin over half its overlaps are in (0: off).",
)
@click.option(
    "--split-view-smoothing",
    type=click.IntRange(min=0),
    default=8,
    show_default=True,
    help="Rounds of averaging the composition and abundances over overlaps before the "
    "overlap_split step proposes its cuts (off; --cluster-param overlap_split=true).",
)
@click.option(
    "--max-train-reads",
    type=click.IntRange(min=100),
    default=200_000,
    show_default=True,
    help="The VAE trains on a seeded sample of at most this many reads and encodes all.",
)
@click.option(
    "--max-hdbscan-reads",
    type=click.IntRange(min=100),
    default=25_000,
    show_default=True,
    help="HDBSCAN clusters the longest this many reads; every other read joins the bin that "
    "4 of its 5 nearest clustered reads are in, else stays unbinned.",
)
@click.option(
    "--min-cluster-size",
    type=click.IntRange(min=2),
    default=50,
    show_default=True,
    help="HDBSCAN min_cluster_size (reads).",
)
@click.option(
    "--min-samples",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="HDBSCAN min_samples.",
)
@click.option(
    "--min-bin-size",
    type=click.IntRange(min=0),
    default=1_000_000,
    show_default=True,
    help="Drop bins of fewer read bases than this.",
)
@click.option("--bin-prefix", default="bin", show_default=True, help="Bins are named <prefix>.<n>.")
@cluster_param_option
@click.option(
    "--no-reads-output", is_flag=True, help="Do not write bins/* and unbinned.* read files."
)
@click.option("--plot", is_flag=True, help="Draw latent_umap.png (needs the plot extra).")
@click.option(
    "--truth",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="With --plot: colour the picture by the true genome of each read (CAMI binning file).",
)
@threads_option
@quiet_option
def bin_reads(
    reads: tuple[Path, ...],
    outdir: Path,
    preset: str,
    epochs: int | None,
    batch_size: int | None,
    seed: int,
    device: str,
    kmer_size: int,
    composition_k: int,
    histogram_bins: int,
    bin_width: int,
    histograms: bool | None,
    kmer_sampling: int,
    min_read_len: int,
    overlap_graph: bool,
    graph_smoothing: int,
    latent_smoothing: int,
    graph_vote_rounds: int,
    split_view_smoothing: int,
    max_train_reads: int,
    max_hdbscan_reads: int,
    min_cluster_size: int,
    min_samples: int,
    min_bin_size: int,
    bin_prefix: str,
    cluster_params: tuple[str, ...],
    no_reads_output: bool,
    plot: bool,
    truth: Path | None,
    threads: int | None,
    quiet: bool,
) -> None:
    """Bin long reads without an assembly: k-mer abundance histograms per sample and read
    overlaps, VAE, HDBSCAN.

    Writes read_clusters.tsv (clustername, readname), bins/<prefix>.<n>.fq.gz (.fa.gz for FASTA
    input), unbinned.fq.gz, summary.json, model.pt, latent.npy and features/.
    """
    from vaebin.cluster import with_settings
    from vaebin.reads import (
        ReadBinRequest,
        ReadFeatureConfig,
        ReadScaleConfig,
        read_cluster_config,
        read_train_config,
        run_bin_reads,
    )

    _setup_logging(quiet)
    if plot:
        from vaebin.plot import plotting_available

        if not plotting_available():
            raise VaebinError(
                "--plot needs umap-learn and matplotlib: pip install 'vaebin-rs[plot]'"
            )
    train_config = read_train_config(
        preset,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        device=device,
        threads=threads,
        quiet=quiet,
    )
    summary = run_bin_reads(
        ReadBinRequest(
            reads=reads,
            outdir=outdir,
            threads=threads,
            write_reads=not no_reads_output,
            plot=plot,
            truth=truth,
        ),
        ReadFeatureConfig(
            k=kmer_size,
            composition_k=composition_k,
            histogram_bins=histogram_bins,
            bin_width=bin_width,
            sampling=kmer_sampling,
            min_read_len=min_read_len,
            overlap_graph=overlap_graph,
        ),
        ReadScaleConfig(
            max_train_reads=max_train_reads,
            use_histograms=True if histograms is None else histograms,
            graph_smoothing=graph_smoothing,
            latent_smoothing=latent_smoothing,
            graph_vote_rounds=graph_vote_rounds,
            split_view_smoothing=split_view_smoothing,
        ),
        train_config,
        with_settings(
            read_cluster_config(
                min_cluster_size=min_cluster_size,
                min_samples=min_samples,
                min_bin_size=min_bin_size,
                max_hdbscan_contigs=max_hdbscan_reads,
                bin_prefix=bin_prefix,
                threads=threads or 1,
            ),
            cluster_params,
        ),
    )
    counts = summary["counts"]
    log.info(
        "%d bins (%d reads, %d bases) written to %s",
        counts["bins"],
        counts["binned_reads"],
        counts["binned_bases"],
        outdir,
    )


@main.command()
@click.option(
    "--features",
    "features_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Folder written by `featurize --bam/--depth`.",
)
@click.option(
    "--outdir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Where model.pt, latent.npy and latent_contigs.tsv go.",
)
@_train_options
@threads_option
@quiet_option
def train(
    features_dir: Path,
    outdir: Path,
    preset: str,
    epochs: int | None,
    batch_size: int | None,
    seed: int,
    device: str,
    min_contig_len: int,
    threads: int | None,
    quiet: bool,
) -> None:
    """Train the VAE on saved features and write the model and latent means."""
    from vaebin.encode import EncodeConfig
    from vaebin.pipeline import embed, load_features, save_embedding

    _setup_logging(quiet)
    contig_features = load_features(features_dir)
    embedding = embed(
        contig_features,
        EncodeConfig(min_contig_len=min_contig_len),
        _train_config(preset, epochs, batch_size, seed, device, threads, quiet),
    )
    outdir.mkdir(parents=True, exist_ok=True)
    save_embedding(outdir, embedding)
    log.info(
        "trained on %d contigs (%s); model and latent means in %s",
        embedding.model_input.n_contigs,
        embedding.device,
        outdir,
    )


@main.command()
@click.option(
    "--latent",
    "latent_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Folder written by `vaebin-rs train`.",
)
@contigs_option
@click.option(
    "--outdir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Output folder.",
)
@click.option(
    "--features",
    "features_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="Folder written by `featurize` for the training: its depths let the depth steps "
    "(--merge-same-depth, --split-mixed-depth) run as in `bin`.",
)
@_cluster_options
@click.option("--no-fasta", is_flag=True, help="Do not write bins/*.fna.gz and unbinned.fna.gz.")
@threads_option
@quiet_option
def cluster(
    latent_dir: Path,
    contigs: Path,
    features_dir: Path | None,
    outdir: Path,
    no_fasta: bool,
    threads: int | None,
    quiet: bool,
    **cluster_options: Any,
) -> None:
    """Cluster saved latent means into bins and write the bin files."""
    from vaebin.pipeline import run_cluster

    _setup_logging(quiet)
    run_cluster(
        latent_dir,
        contigs,
        outdir,
        _cluster_config(cluster_options, threads),
        features_dir=features_dir,
        write_fasta=not no_fasta,
    )


@main.command()
@click.option(
    "--truth",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="CAMI binning file of the true genome of each contig.",
)
@click.option(
    "--bins",
    "bins_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="clusters.tsv (clustername, contigname) or a CAMI binning file.",
)
@click.option(
    "--contigs",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Assembly, for contig lengths when the truth file has no _LENGTH column.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write the scores as JSON here.",
)
@click.option(
    "--split-separator",
    default=None,
    help="Multi-split bins (as `bin --split-separator`): score against per-sample genomes, "
    "the truth's genome01 counting as S1:genome01, S2:genome01, ... by contig name prefix.",
)
def evaluate(
    truth: Path,
    bins_path: Path,
    contigs: Path | None,
    json_path: Path | None,
    split_separator: str | None,
) -> None:
    """Score bins against the truth: completeness, purity, near-complete genomes, ARI."""
    from vaebin import io
    from vaebin.evaluate import evaluate_files

    result = evaluate_files(truth, bins_path, contigs, split_separator=split_separator)
    click.echo(result.table())
    if json_path is not None:
        with io.atomic_text(json_path) as handle:
            handle.write(result.to_json() + "\n")


@main.command()
@click.option(
    "--outdir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Output folder.",
)
@click.option(
    "--preset",
    type=click.Choice(["toy", "small", "benchmark"]),
    default="small",
    show_default=True,
    help="Community size.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--genomes",
    type=click.IntRange(min=1),
    default=None,
    help="Number of genomes [default: preset's].",
)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=None,
    help="Number of samples [default: preset's].",
)
@click.option(
    "--multisplit", is_flag=True, help="Name contigs S<sample>C<n> as in per-sample assemblies."
)
@click.option(
    "--long-reads",
    is_flag=True,
    help="Simulate long reads (FASTQ, nanopore-like errors) instead of contigs and BAMs.",
)
@click.option(
    "--bases-per-sample",
    type=int,
    default=None,
    help="Long reads: genome bases read per sample [default: preset's].",
)
@click.option(
    "--error-rate",
    type=float,
    default=None,
    help="Long reads: mean per-read error rate, mostly indels [default: 0.08].",
)
@click.option("--fasta", is_flag=True, help="Long reads: write FASTA instead of FASTQ.")
@click.option(
    "--genome-fasta",
    "genome_fastas",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Long reads: a real genome to read from (one genome per file; repeat per genome).",
)
@threads_option
@quiet_option
def simulate(
    outdir: Path,
    preset: str,
    seed: int,
    genomes: int | None,
    samples: int | None,
    multisplit: bool,
    long_reads: bool,
    bases_per_sample: int | None,
    error_rate: float | None,
    fasta: bool,
    genome_fastas: tuple[Path, ...],
    threads: int | None,
    quiet: bool,
) -> None:
    """Simulate a community: contigs, per-sample sorted BAMs, truth and a samplesheet.

    With --long-reads: gzipped long reads per sample, the truth per read and a samplesheet.
    """
    from vaebin.simulate import SimulationConfig, simulate_community

    _setup_logging(quiet)
    long_read_options = {
        "--bases-per-sample": bases_per_sample is not None,
        "--error-rate": error_rate is not None,
        "--fasta": fasta,
        "--genome-fasta": bool(genome_fastas),
    }
    if long_reads:
        if multisplit:
            raise click.UsageError("--multisplit names contigs; it does not apply to --long-reads")
        if genomes is not None and genome_fastas:
            raise click.UsageError("give --genomes or --genome-fasta, not both")
        _simulate_long_reads(
            outdir,
            preset,
            seed,
            genomes,
            samples,
            bases_per_sample,
            error_rate,
            fasta,
            genome_fastas,
            threads,
        )
        return
    for option, given in long_read_options.items():
        if given:
            raise click.UsageError(f"{option} needs --long-reads")
    config = SimulationConfig.preset(preset, seed=seed).with_overrides(
        n_genomes=genomes,
        n_samples=samples,
        threads=threads,
        contig_naming="multisplit" if multisplit else None,
    )
    result = simulate_community(outdir, config)
    log.info(
        "%d genomes, %d contigs (%d bp), %d samples, reads per sample: %s; in %.1f s",
        len(result.genomes),
        result.n_contigs,
        result.contig_bp,
        len(result.sample_names),
        ", ".join(map(str, result.reads_per_sample)),
        result.seconds,
    )


def _simulate_long_reads(
    outdir: Path,
    preset: str,
    seed: int,
    genomes: int | None,
    samples: int | None,
    bases_per_sample: int | None,
    error_rate: float | None,
    fasta: bool,
    genome_fastas: tuple[Path, ...],
    threads: int | None,
) -> None:
    from vaebin.simulate_reads import LongReadConfig, simulate_long_reads

    config = LongReadConfig.preset(preset, seed=seed).with_overrides(
        n_genomes=genomes,
        n_samples=samples,
        bases_per_sample=bases_per_sample,
        error_rate=error_rate,
        fasta=fasta or None,
        genome_fastas=genome_fastas or None,
        threads=threads,
    )
    result = simulate_long_reads(outdir, config)
    log.info(
        "%d genomes, %d samples, reads per sample: %s (%s bp); read N50 %d bp, "
        "error rate %.3f; in %.1f s",
        len(result.genomes),
        len(result.sample_names),
        ", ".join(map(str, result.reads_per_sample)),
        ", ".join(map(str, result.bases_per_sample)),
        result.read_n50_bp,
        result.error_rate,
        result.seconds,
    )


@main.command()
@click.option(
    "--outdir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("vaebin-demo"),
    show_default=True,
    help="Output folder.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--long-reads",
    is_flag=True,
    help="Show the long-read mode: simulate long reads and bin them with bin-reads.",
)
@threads_option
@quiet_option
def demo(outdir: Path, seed: int, long_reads: bool, threads: int | None, quiet: bool) -> None:
    """Simulate a small community, bin it and print how well the bins match the truth."""
    from vaebin.demo import run_demo, run_demo_long_reads

    _setup_logging(quiet)
    if long_reads:
        click.echo(run_demo_long_reads(outdir, seed, threads, quiet).report("long reads"))
    else:
        click.echo(run_demo(outdir, seed, threads, quiet).report("short reads"))


@main.command()
@contigs_option
@click.option(
    "--bam",
    "bams",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Coordinate-sorted BAM of one sample's reads mapped to the contigs (repeat per sample).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Depth table to write (MetaBAT2 format).",
)
@click.option(
    "--min-identity",
    type=click.FloatRange(0.0, 1.0),
    default=features.CoverageOptions.min_identity,
    show_default=True,
    help="Leave out reads under this identity (metabat mode).",
)
@click.option(
    "--trim-edges",
    type=click.IntRange(min=0),
    default=features.CoverageOptions.trim_edges,
    show_default=True,
    help="Leave out at most this many bases (and at most the mean read length) at each contig "
    "end (metabat mode); 0 keeps the edges.",
)
@click.option(
    "--min-mapq",
    type=click.IntRange(0, 255),
    default=features.CoverageOptions.min_mapq,
    show_default=True,
    help="Leave out reads with a lower mapping quality.",
)
@click.option(
    "--mode",
    type=click.Choice(features.DEPTH_MODES),
    default=features.CoverageOptions.mode,
    show_default=True,
    help="metabat: jgi_summarize_bam_contig_depths numbers; mean: plain per-base mean and "
    "variance over the whole contig.",
)
@threads_option
@quiet_option
def coverage(
    contigs: Path,
    bams: tuple[Path, ...],
    out: Path,
    min_identity: float,
    trim_edges: int,
    min_mapq: int,
    mode: str,
    threads: int | None,
    quiet: bool,
) -> None:
    """Per-contig depth of each BAM file, written as a MetaBAT2 depth table."""
    from vaebin.pipeline import run_coverage

    _setup_logging(quiet)
    options = features.CoverageOptions(
        mode=mode, min_identity=min_identity, trim_edges=trim_edges, min_mapq=min_mapq
    )
    run_coverage(contigs, bams, out, options, threads)


@main.command("merge-depths")
@click.argument("tables", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Merged depth table to write.",
)
@click.option(
    "--trim-edges",
    type=click.IntRange(min=0),
    default=features.CoverageOptions.trim_edges,
    show_default=True,
    help="Edge trimming assumed for every sample when totalAvgDepth is recomputed.",
)
@quiet_option
def merge_depths(tables: tuple[Path, ...], out: Path, trim_edges: int, quiet: bool) -> None:
    """Join per-sample MetaBAT2 depth tables of the same contigs into one table."""
    from vaebin import depths

    _setup_logging(quiet)
    merged = depths.merge_depth_files(tables, out, trim_edges=trim_edges)
    log.info(
        "%d contigs x %d samples from %d tables written to %s",
        merged.n_contigs,
        len(merged.sample_names),
        len(tables),
        out,
    )
