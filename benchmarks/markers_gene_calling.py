"""Marker genes with one trained Prodigal model against metagenomic mode on a real community's
contigs (docs/markers.md, "The default: one trained model"):

    python benchmarks/markers_gene_calling.py benchmarks/data/community-debian3

Prints each mode's CPU per Mbp, the per-genome estimates (truth contigs as bins) and how many
contigs carry the same marker genes."""

import sys
from pathlib import Path

import numpy as np

from vaebin import markers
from vaebin.io.cami import read_cami_binning

community = Path(sys.argv[1])
truth = read_cami_binning(community / "truth.binning")
names = sorted(truth)
genomes = sorted(set(truth.values()))
labels = np.array([genomes.index(truth[n]) for n in names])
marker_set = markers.load_marker_set(markers.cached_hmm_path())
bp = None
rows = {}
for mode in ("trained", "meta"):
    hits = markers.find_markers(
        community / "contigs.fna.gz", names, marker_set, threads=1, gene_calling=mode
    )
    bp = hits.bp_searched
    est = markers.bin_estimates(labels, hits.contig_genes, marker_set.genes, len(genomes))
    rows[mode] = (hits, est)
    print(
        f"{mode}: {hits.bp_searched / 1e6:.1f} Mbp, genes {hits.genes_called}, hits {hits.hits}, "
        f"CPU {hits.cpu_seconds:.0f} s = {hits.cpu_seconds / (hits.bp_searched / 1e6):.2f} s/Mbp "
        f"(gene calling {hits.gene_calling_seconds:.0f} s wall, "
        f"search {hits.search_seconds:.0f} s wall)",
        flush=True,
    )
print("| genome | meta completeness / contamination | trained |")
print("|---|---|---|")
same = 0
for g, name in enumerate(genomes):
    m, t = rows["meta"][1][g], rows["trained"][1][g]
    same += (m.genes_found, m.extra_copies) == (t.genes_found, t.extra_copies)
    print(
        f"| {name} | {m.completeness} / {m.contamination} | {t.completeness} / {t.contamination} |"
    )
print("genomes with equal estimates:", same, "of", len(genomes))
print(
    "contigs with equal marker lists:",
    sum(
        sorted(rows["meta"][0].contig_genes.get(i, []))
        == sorted(rows["trained"][0].contig_genes.get(i, []))
        for i in range(len(names))
    ),
    "of",
    len(names),
)
