#!/usr/bin/env bash
# The CUDA path on a GPU machine: the GPU tests, the demo, and the real-genome community binned on
# the GPU (seed 1 twice, to compare, and seeds 2 and 3) and on the CPU of the same machine.
#
# Prepare on a machine with the project built (pip download fetches the wheels the GPU machine
# lacks; it has torch, numpy, click, tqdm, scikit-learn):
#   maturin build --release -o .whl
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
#       --platform manylinux_2_28_x86_64 -d .whl hdbscan pysam
#   vaebin-rs coverage --contigs $C/contigs.fna.gz --bam $C/sample1.bam ... --out .gpu/debian_depth.tsv
#   cp $C/contigs.fna.gz .gpu/debian_contigs.fna.gz; cp $C/truth.binning .gpu/debian_truth.binning
# (C = the community of `python benchmarks/debian_community.py`), then on the GPU machine:
#   bash benchmarks/gpu_check.sh OUTDIR
set -uo pipefail
out=${1:?usage: gpu_check.sh OUTDIR}
mkdir -p "$out"
log="$out/gpu_check.log"
exec > >(tee "$log") 2>&1

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
date -u
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
nproc
python3 -c 'import torch, vaebin; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'

echo "== GPU tests"
python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_model.py

echo "== demo (device auto)"
/usr/bin/time -f 'demo wall %e s, peak RSS %M kB' vaebin-rs demo --outdir /tmp/demo --quiet \
    || echo "demo failed"
python3 -c 'import json; s = json.load(open("/tmp/demo/bins/summary.json")); print("demo device", s["device"])' \
    || true

echo "== real-genome community"
D=.gpu
# cuda1 and cuda1again: the same seed twice (determinism); seeds 2 and 3 show the spread.
for run in cuda1 cuda1again cuda2 cuda3 cpu1; do
    device=${run%%[0-9]*}
    seed=${run#$device}
    seed=${seed%again}
    /usr/bin/time -f "$run wall %e s, peak RSS %M kB" vaebin-rs bin --contigs $D/debian_contigs.fna.gz \
        --depth $D/debian_depth.tsv --outdir /tmp/$run --device "$device" --seed "$seed" \
        --threads "$(nproc)" --min-contig-len 2000 --min-bin-size 200000 --no-fasta --quiet
    vaebin-rs evaluate --truth $D/debian_truth.binning --bins /tmp/$run/clusters.tsv | head -1
    python3 - "$run" <<'EOF'
import json, sys
s = json.load(open(f"/tmp/{sys.argv[1]}/summary.json"))
steps = {k: v["seconds"] for k, v in s["steps"].items()}
print(sys.argv[1], "device", s["device"], "steps", steps)
EOF
done
cp /tmp/cuda1/summary.json "$out/summary_cuda.json"
cp /tmp/cpu1/summary.json "$out/summary_cpu.json"
if cmp -s /tmp/cuda1/clusters.tsv /tmp/cuda1again/clusters.tsv; then
    echo "cuda seed 1 twice: identical clusters.tsv"
else
    echo "cuda seed 1 twice: clusters.tsv DIFFER"
fi
python3 -c 'import numpy as n; a, b = n.load("/tmp/cuda1/latent.npy"), n.load("/tmp/cuda1again/latent.npy"); print("latent max |diff| seed 1 twice", float(abs(a - b).max()))'

echo "== CPU training with 4 threads instead of $(nproc) (seed 1)"
vaebin-rs bin --contigs $D/debian_contigs.fna.gz --depth $D/debian_depth.tsv --outdir /tmp/cpu1t4 \
    --device cpu --seed 1 --threads 4 --no-fasta --quiet
python3 -c 'import json; s = json.load(open("/tmp/cpu1t4/summary.json")); print("cpu 4 threads steps", {k: v["seconds"] for k, v in s["steps"].items()})'
