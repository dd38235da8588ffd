"""CKNNA at scale: the project's blocked O(N k) implementation against the dense definition.

Both run on the same data (feat A d=2048, feat B d=8, a shared latent plus noise,
L2-normalized), each measurement in a fresh subprocess so that peak memory (max RSS,
torch import included) belongs to that measurement alone; workers run with
``MALLOC_MMAP_THRESHOLD_=1048576`` so that RSS follows live memory rather than glibc's
adaptive heap reuse. Printed per N:

* ``fast64``: this package on float64 input, compared with ``dense64`` (the
  definition, :mod:`lerobot_cknna.testing.dense_reference`, float64) for the value;
* ``fast32``: this package on float32 input (what a policy's features are);
* ratios dense / fast for time and peak memory.

The dense reference is skipped where its ~12 N x N float64 matrices would not fit in
memory; float64 fast runs are skipped above 20k (only float32 matters there).

Usage::

    .venv/bin/python benchmarks/bench_metrics.py                 # N = 1k ... 20k, 100k
    .venv/bin/python benchmarks/bench_metrics.py --sizes 1000 2000 --device cuda
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import psutil

D_A, D_B, K = 2048, 8, 10
DENSE_MATRICES = 12


def make_features(n: int, dtype, device: str, seed: int = 0, rows_per_chunk: int = 8192):
    """A shared 4-D latent seen through feat A (d=2048) and feat B (d=8), plus noise, L2-normalized.

    Built ``rows_per_chunk`` rows at a time straight into the output dtype, so that making the
    features never holds more than the features themselves plus one chunk; the numbers are
    those of making each feature in one piece (the generator's draws come in the same order).
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    latent = torch.randn(n, 4, generator=gen)
    feats = []
    for dim, noise in ((D_A, 2.0), (D_B, 0.5)):
        projection = torch.randn(4, dim, generator=gen)
        x = torch.empty(n, dim, dtype=dtype, device=device)
        for start in range(0, n, rows_per_chunk):
            rows = slice(start, min(start + rows_per_chunk, n))
            chunk = latent[rows] @ projection
            chunk.add_(torch.randn(chunk.shape, generator=gen), alpha=noise)
            x[rows] = chunk.div_(chunk.norm(dim=1, keepdim=True))
        feats.append(x)
    return feats


def worker(method: str, n: int, device: str) -> dict:
    import torch

    from lerobot_cknna.metrics.alignment import cknna
    from lerobot_cknna.testing import dense_reference

    dtype = torch.float32 if method == "fast32" else torch.float64
    a, b = make_features(n, dtype, device)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    value = dense_reference.cknna(a, b, K)["value"] if method == "dense64" else cknna(a, b, K).value
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    return {"method": method, "n": n, "value": value, "seconds": seconds, "peak_mb": peak_mb}


def measure(method: str, n: int, device: str) -> dict:
    # A fixed mmap threshold stops glibc's adaptive one from keeping freed tiles on the heap,
    # which otherwise inflates peak RSS by up to ~2 GB at some N on either side.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(2**20)}
    out = subprocess.run(
        [sys.executable, __file__, "--worker", method, str(n), "--device", device],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def cell(measured: dict | None) -> str:
    if measured is None:
        return f"{'-':>9} {'-':>7}"
    return f"{measured['seconds']:>9.2f} {measured['peak_mb']:>7.0f}"


def dense_fits(n: int, device: str) -> bool:
    need = DENSE_MATRICES * n * n * 8
    if device == "cuda":
        import torch

        return need < 0.8 * torch.cuda.get_device_properties(0).total_memory
    return need < 0.8 * psutil.virtual_memory().available


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 5000, 10000, 20000, 100000])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.device)))
        return

    import torch

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    memory = (
        "GPU memory allocated"
        if args.device == "cuda"
        else f"peak RSS; importing torch alone: {baseline:.0f}"
    )
    print(
        f"CKNNA k={K}, feat A d={D_A}, feat B d={D_B}, device={args.device}, torch threads={torch.get_num_threads()}"
    )
    print(f"time in s, memory in MB ({memory})")
    header = (
        f"{'N':>7} | {'fast32 s':>9} {'MB':>7} | {'fast64 s':>9} {'MB':>7} | {'dense64 s':>9} {'MB':>7} | "
        f"{'time x':>7} {'mem x':>6} | {'|rel diff|':>10}"
    )
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        row = {"fast32": measure("fast32", n, args.device)}
        if n <= 20000:
            row["fast64"] = measure("fast64", n, args.device)
        if n <= 20000 and dense_fits(n, args.device):
            row["dense64"] = measure("dense64", n, args.device)

        if "dense64" in row and "fast64" in row:
            dense, fast = row["dense64"], row["fast64"]
            ratios = f"{dense['seconds'] / fast['seconds']:>7.1f} {dense['peak_mb'] / fast['peak_mb']:>6.1f}"
            diff = f"{abs(fast['value'] - dense['value']) / abs(dense['value']):>10.1e}"
        else:
            ratios, diff = f"{'-':>7} {'-':>6}", f"{'-':>10}"
        cells = " | ".join(cell(row.get(method)) for method in ("fast32", "fast64", "dense64"))
        print(f"{n:>7} | {cells} | {ratios} | {diff}", flush=True)


if __name__ == "__main__":
    main()
