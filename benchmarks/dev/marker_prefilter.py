"""How many (protein, model) pairs the seed prefilter of the marker search keeps, and whether it
keeps every pair the full search reports (docs/markers.md, "Search filters").

    python benchmarks/dev/marker_prefilter.py benchmarks/data/community-debian2 [more ...]
        [--configs 4:7:15:60] [--min-scores 20] [--min-length 2000] [--search]

A folder is a community (contigs.fna or contigs.fna.gz) or a folder of genomes (*.fna, joined
into contigs named genome_N, e.g. benchmarks/data/reads-set1/genomes). For each: its contigs of
at least --min-length bp are gene-called as `bin` does (trained model, metagenomic re-call),
cached under /tmp/vaebin-marker-prefilter/, and searched against the whole marker set with HMMER
(the reference). Each config k:threshold:x_drop:window is then scored: each pair's best
seed-anchored ungapped score, then for each --min-scores value the share of pairs (and of
residue x state cells) it would pass on to HMMER and the reference hits it would lose (a hit is
a pair that `markers._search` counts: included, covering enough of the model).
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

import numpy as np

from vaebin import _core, features, markers

CACHE = Path("/tmp/vaebin-marker-prefilter")


def cache_key(community: Path) -> str:
    """A cache name for a community folder: its path, "/" as "_" (two "genomes" folders differ)."""
    return "_".join(community.resolve().parts[-3:])


def contigs_of(community: Path) -> Path:
    """The folder's contigs.fna(.gz), else its genomes (*.fna) joined into one file of
    contigs named genome_N (N: the record), under CACHE."""
    for path in (community / "contigs.fna.gz", community / "contigs.fna"):
        if path.exists():
            return path
    genomes = sorted(community.glob("*.fna"))
    if not genomes:
        sys.exit(f"{community}: no contigs.fna(.gz) and no genomes (*.fna)")
    joined = CACHE / f"{cache_key(community)}.joined.fna"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(joined, "w") as out:
        for genome in genomes:
            record = 0
            for line in genome.read_text().splitlines():
                if line.startswith(">"):
                    record += 1
                    out.write(f">{genome.stem}_{record}\n")
                else:
                    out.write(line + "\n")
    return joined


def proteins_of(community: Path, min_length: int, threads: int) -> list[tuple[int, list[str]]]:
    cached = CACHE / f"{cache_key(community)}.proteins.pkl"
    if cached.is_file():
        return pickle.loads(cached.read_bytes())
    contigs = contigs_of(community)
    names, lengths = features.names_and_lengths(contigs)
    wanted = {str(name): row for row, name in enumerate(names[lengths >= min_length])}
    sequences = markers._read_contigs(contigs, wanted)
    finder, _ = markers._gene_finder(sequences, "trained")
    import pyrodigal

    proteins, _ = markers._call_genes(sequences, threads, finder, pyrodigal.GeneFinder(meta=True))
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(pickle.dumps(proteins))
    return proteins


def reference_pairs(
    community: Path, marker_set: markers.MarkerSet, flat: list[str], threads: int
) -> tuple[set[tuple[int, int]], float]:
    cached = CACHE / f"{cache_key(community)}.reference.pkl"
    if cached.is_file():
        return pickle.loads(cached.read_bytes())
    import pyhmmer

    alphabet = pyhmmer.easel.Alphabet.amino()
    block = pyhmmer.easel.DigitalSequenceBlock(alphabet)
    for i, protein in enumerate(flat):
        block.append(
            pyhmmer.easel.TextSequence(name=str(i).encode(), sequence=protein).digitize(alphabet)
        )
    started = time.perf_counter()
    pairs = set()
    for m, top_hits in enumerate(
        pyhmmer.hmmsearch(marker_set.hmms, block, cpus=threads, bit_cutoffs="trusted")
    ):
        for hit in top_hits:
            if not hit.included:
                continue
            a = hit.best_domain.alignment
            if (a.hmm_to - a.hmm_from + 1) / top_hits.query.M < 0.4:
                continue
            pairs.add((int(hit.name), m))
    result = (pairs, time.perf_counter() - started)
    cached.write_bytes(pickle.dumps(result))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("communities", nargs="+", type=Path)
    parser.add_argument("--configs", default="4:7:15:40")
    parser.add_argument(
        "--min-scores", type=lambda v: [float(x) for x in v.split(",")], default=[15, 20, 25, 30]
    )
    parser.add_argument("--min-length", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--search",
        action="store_true",
        help="also run the marker search of `bin` without filters, with the seed prefilter "
        "and with both filters, and compare the genes found on each contig",
    )
    args = parser.parse_args()
    marker_set = markers.load_marker_set(markers.cached_hmm_path())
    profiles = markers.profile_scores(marker_set.hmms)
    configs = [tuple(c.split(":")) for c in args.configs.split(",")]
    for community in args.communities:
        proteins = proteins_of(community, args.min_length, args.threads)
        flat = [p for _, found in proteins for p in found]
        pairs, seconds = reference_pairs(community, marker_set, flat, args.threads)
        residues = sum(len(p) for p in flat)
        print(
            f"{community.name}: {len(flat)} proteins, {residues} residues, {len(pairs)} reference "
            f"pairs, full search {seconds:.1f} s",
            flush=True,
        )
        if args.search:
            compare_searches(marker_set, proteins, args.threads)
        encoded = [p.encode() for p in flat]
        lengths = np.array([len(p) for p in flat], dtype=np.float64)
        model_lengths = np.array([h.M for h in marker_set.hmms], dtype=np.float64)
        all_cells = lengths.sum() * model_lengths.sum()
        for config in configs:
            k, threshold, x_drop, window = (
                int(config[0]),
                float(config[1]),
                float(config[2]),
                int(config[3]),
            )
            started = time.perf_counter()
            index = _core.MarkerSeeds(profiles, k, threshold, x_drop, window, threads=args.threads)
            built = time.perf_counter()
            proteins_, models_, scores_ = index.best_scores(encoded, threads=args.threads)
            scanned = time.perf_counter()
            score_of = {
                (int(p), int(m)): float(s)
                for p, m, s in zip(proteins_, models_, scores_, strict=True)
            }
            reference = sorted(score_of.get(pair, -np.inf) for pair in pairs)
            print(
                f"  k {k} T {threshold} X {x_drop} W {window}: seeds median "
                f"{int(np.median(index.seeds))}, "
                f"table {index.table_bytes / 1e6:.0f} MB, build {built - started:.2f} s, scan "
                f"{scanned - built:.2f} s; lowest reference scores "
                + ", ".join(f"{v:.1f}" for v in reference[:5]),
                flush=True,
            )
            for min_score in args.min_scores:
                keep = scores_ >= min_score
                cells = (lengths[proteins_[keep]] * model_lengths[models_[keep]]).sum()
                lost = sum(v < min_score for v in reference)
                t0 = time.perf_counter()
                index.candidates(encoded, min_score, threads=args.threads)
                print(
                    f"    min score {min_score}: pairs kept {keep.sum()} "
                    f"({100 * keep.sum() / (len(flat) * len(marker_set.hmms)):.3f} %), cells "
                    f"{100 * cells / all_cells:.3f} %, candidates {time.perf_counter() - t0:.2f} s;"
                    f" lost {lost} of {len(pairs)}",
                    flush=True,
                )


def compare_searches(
    marker_set: markers.MarkerSet, proteins: list[tuple[int, list[str]]], threads: int
) -> None:
    """The search of `bin` without filters, with the seed prefilter only, and with both."""
    variants = (
        ("no filters", None),
        ("seed prefilter", markers.SearchFilters(forward_margin_bits=None)),
        ("both filters", markers.SearchFilters()),
    )
    reference = None
    for name, filters in variants:
        started, cpu = time.perf_counter(), time.process_time()
        contig_genes, hits, _, block = markers._search(marker_set, proteins, threads, 0.4, filters)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        if reference is None:
            reference = contig_genes
        differ = sum(
            reference.get(row) != contig_genes.get(row)
            for row in set(reference) | set(contig_genes)
        )
        cells = block.get("cells_searched_percent", 100.0)
        print(
            f"  {name}, {threads} threads: {wall:.2f} s, {cpu:.1f} CPU s, {hits} hits, "
            f"{cells} % of cells; contigs whose genes differ from no filters: {differ}",
            flush=True,
        )


def _name(marker_set: markers.MarkerSet, m: int) -> str:
    return markers._name(marker_set.hmms[m].name)


if __name__ == "__main__":
    sys.exit(main())
