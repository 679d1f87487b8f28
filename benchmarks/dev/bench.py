"""Scratch benchmark: simulate a community, featurize, train, cluster, evaluate; print JSON."""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from vaebin.cluster import ClusterConfig, cluster_latent
from vaebin.encode import EncodeConfig, build_model_input
from vaebin.evaluate import evaluate_bins
from vaebin.features import composition
from vaebin.io.cami import read_cami_binning
from vaebin.model import ModelConfig
from vaebin.simulate import SimulationConfig, simulate_community
from vaebin.train import TrainConfig, train_vae

DATA = Path(__file__).resolve().parents[1] / "data" / "dev"


MEDIUM = {
    "n_genomes": 40,
    "genome_length_bp": (800_000, 2_500_000),
    "related_fraction": 0.3,
    "strain_fraction": 0.1,
    "mean_coverage": 5.0,
    "threads": 1,
}
# name -> (simulator preset, seed, overrides)
DATASETS: dict[str, tuple[str, int, dict[str, object]]] = {
    "toy": ("toy", 0, {}),
    "small": ("small", 0, {}),
    "medium4": ("small", 1, {**MEDIUM, "n_samples": 4}),
    "medium1": ("small", 1, {**MEDIUM, "n_samples": 1}),
    "medium8": ("small", 2, {**MEDIUM, "n_samples": 8}),
    "hard3": (
        "small",
        4,
        {
            **MEDIUM,
            "n_genomes": 60,
            "genome_length_bp": (500_000, 2_000_000),
            "related_fraction": 0.4,
            "strain_fraction": 0.15,
            "mean_coverage": 3.0,
            "n_samples": 3,
        },
    ),
    "multisplit": ("small", 3, {"n_samples": 3, "contig_naming": "multisplit", "threads": 1}),
}


def simulated(name: str) -> Path:
    """Simulate a named dataset once and cache it; add a MetaBAT2 depth table."""
    preset, seed, overrides = DATASETS[name]
    outdir = DATA / name
    if not (outdir / "depth.txt").exists():
        result = simulate_community(outdir, SimulationConfig.preset(preset, seed=seed, **overrides))
        subprocess.run(
            [
                "jgi_summarize_bam_contig_depths",
                "--outputDepth",
                str(outdir / "depth.txt"),
                *map(str, result.bams),
            ],
            check=True,
            capture_output=True,
        )
    return outdir


def load(outdir: Path):
    comp = composition(outdir / "contigs.fna.gz", k=4)
    table = np.genfromtxt(
        outdir / "depth.txt", dtype=None, encoding=None, names=True, delimiter="\t"
    )
    names = np.asarray(table["contigName"]).astype(str)
    columns = [c for c in table.dtype.names[3:] if not c.endswith("var")]
    depths = np.stack([np.asarray(table[c], dtype=np.float32) for c in columns], axis=1)
    order = {n: i for i, n in enumerate(names)}
    rows = np.array([order[n] for n in comp.names])
    return comp, depths[rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="small", choices=sorted(DATASETS))
    parser.add_argument("--model", default="default")
    parser.add_argument("--train", default="{}", help="JSON overrides of TrainConfig")
    parser.add_argument("--arch", default="{}", help="JSON overrides of ModelConfig")
    parser.add_argument("--cluster", default="[{}]", help="JSON list of ClusterConfig overrides")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train-seed", type=int, default=0)
    args = parser.parse_args()

    outdir = simulated(args.data)
    comp, depths = load(outdir)
    truth = read_cami_binning(outdir / "truth.binning")
    if args.data == "multisplit":
        # Per-sample assemblies: each (sample, genome) is its own target, as VAMB evaluates.
        truth = {c: f"{c.split('C', 1)[0]}:{g}" for c, g in truth.items()}
    lengths = dict(zip(comp.names.tolist(), comp.lengths.tolist(), strict=True))
    model_input = build_model_input(comp.matrix, depths, comp.lengths, comp.names, EncodeConfig())
    # Perfect bins of the contigs long enough to be binned: the ceiling of any binner here.
    oracle = evaluate_bins(truth, lengths, {n: truth[n] for n in model_input.names})
    train_config = TrainConfig.for_preset(
        args.model, threads=args.threads, quiet=True, seed=args.train_seed, **json.loads(args.train)
    )
    train_config = train_config.resolved(model_input.n_samples)
    if "batch_doubling_epochs" in json.loads(args.train):
        train_config = replace(
            train_config, batch_doubling_epochs=tuple(train_config.batch_doubling_epochs)
        )
    arch = ModelConfig.for_preset(args.model, model_input.n_samples)
    arch_over = json.loads(args.arch)
    if "hidden_sizes" in arch_over:
        arch_over["hidden_sizes"] = tuple(arch_over["hidden_sizes"])
    arch = replace(arch, **arch_over)
    key = hashlib.sha256(
        json.dumps([args.data, train_config.to_dict(), arch.to_dict()], sort_keys=True).encode()
    ).hexdigest()[:16]
    cache = DATA / "latent" / f"{args.data}_{args.model}_{key}.npz"
    if cache.exists():
        saved = np.load(cache)
        latent_means, final_loss, train_seconds = (
            saved["latent"],
            float(saved["loss"]),
            float(saved["seconds"]),
        )
    else:
        started = time.perf_counter()
        result = train_vae(model_input, train_config, progress=False, model_config=arch)
        train_seconds = time.perf_counter() - started
        latent_means, final_loss = result.latent_means, result.loss_history[-1]["loss"]
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, latent=latent_means, loss=final_loss, seconds=train_seconds)
    for overrides in json.loads(args.cluster):
        if args.data == "multisplit":
            overrides = {"split_separator": "C", **overrides}
        started = time.perf_counter()
        clusters = cluster_latent(
            latent_means,
            model_input.contig_lengths,
            model_input.names,
            ClusterConfig(**overrides),
        )
        cluster_seconds = time.perf_counter() - started
        scores = evaluate_bins(truth, lengths, clusters.contig_bins(model_input.names))
        print(
            json.dumps(
                {
                    "data": outdir.name,
                    "contigs": model_input.n_contigs,
                    "model": args.model,
                    "train": json.loads(args.train),
                    "arch": arch_over,
                    "cluster": overrides,
                    "train_seed": args.train_seed,
                    "genomes": len(scores.genomes),
                    "bins": scores.n_bins,
                    "nc": scores.near_complete,
                    "nc_oracle": oracle.near_complete,
                    "c70p90": scores.counts["0.7/0.9"],
                    "c50p90": scores.counts["0.5/0.9"],
                    "ari": round(scores.adjusted_rand_index, 4),
                    "binned": round(scores.binned_bp / scores.total_bp, 4),
                    "final_loss": round(final_loss, 5),
                    "train_s": round(train_seconds, 1),
                    "cluster_s": round(cluster_seconds, 2),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
