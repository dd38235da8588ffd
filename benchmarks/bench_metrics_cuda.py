"""Scoring on CUDA against scoring on CPU: the same record, and how much sooner.

Runs what ``lerobot-cknna-score`` runs (``score_features``: CKNNA and mutual kNN over the
k sweep, the episode-permutation null and the jackknife interval) on the same synthetic
trajectories twice, ``--cknna.device=cpu`` then ``--cknna.device=cuda``, and prints per N:

* seconds on each device and the ratio CPU / CUDA;
* the largest absolute difference between the two ``cknna.json`` records over every number
  in them (values, HSIC terms, every null sample, interval ends), and how many differ.

The trajectories: a random walk of 8-D state per episode (feat B) and a 2048-D feat A that
is a noisy non-linear view of it, the shapes of a VLA's condition embedding. The CPU run is
skipped above ``--cpu_max_n`` (one permutation costs a full kNN search of the state).

Usage (on a machine with a GPU)::

    python benchmarks/bench_metrics_cuda.py                      # N = 10k, 50k, 100k
    python benchmarks/bench_metrics_cuda.py --sizes 2000 --n_permutations 50
"""

import argparse
import time

import torch

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.features_io import SavedFeatures
from lerobot_cknna.results.scoring import score_features

D_A, D_B = 2048, 8


def trajectories(n: int, episode_length: int, seed: int = 0) -> SavedFeatures:
    """``n`` samples in episodes of ``episode_length``: random-walk state and a 2048-D view of it."""
    gen = torch.Generator().manual_seed(seed)
    n_episodes = n // episode_length
    state = torch.randn(n_episodes, episode_length, D_B, generator=gen).cumsum(dim=1).reshape(-1, D_B)
    feat_a = torch.tanh(state @ torch.randn(D_B, D_A, generator=gen) / 4)
    feat_a += 0.5 * torch.randn(feat_a.shape, generator=gen)
    return SavedFeatures(
        feat_a,
        state,
        torch.arange(n_episodes).repeat_interleave(episode_length),
        torch.arange(episode_length).repeat(n_episodes),
    )


def numbers(record, path: str = "") -> dict[str, float]:
    """Every number in a ``cknna.json`` record, keyed by where it sits."""
    if isinstance(record, dict):
        return {
            key: value
            for name, item in record.items()
            for key, value in numbers(item, f"{path}.{name}").items()
        }
    if isinstance(record, list):
        return {
            key: value
            for i, item in enumerate(record)
            for key, value in numbers(item, f"{path}[{i}]").items()
        }
    if isinstance(record, int | float) and not isinstance(record, bool):
        return {path: float(record)}
    return {}


def timed_score(features: SavedFeatures, device: str, n_permutations: int) -> tuple[dict, float]:
    """The record of ``features`` scored on ``device``, and the seconds it took."""
    cfg = CKNNAConfig(device=device, n_permutations=n_permutations)
    start = time.perf_counter()
    record = score_features(features, cfg)
    if device == "cuda":
        torch.cuda.synchronize()
    return record, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 50000, 100000])
    parser.add_argument("--episode_length", type=int, default=250)
    parser.add_argument("--n_permutations", type=int, default=200)
    parser.add_argument("--cpu_max_n", type=int, default=50000)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("No CUDA device: this benchmark compares CUDA with CPU; run it on a GPU machine.")

    print(
        f"score_features: k sweep [5, 10, 20, 50], {args.n_permutations} episode permutations, jackknife; "
        f"feat A d={D_A}, feat B d={D_B}, episodes of {args.episode_length}"
    )
    print(
        f"CPU: {torch.get_num_threads()} threads; GPU: {torch.cuda.get_device_name()}; torch {torch.__version__}"
    )
    header = f"{'N':>7} | {'CPU s':>8} | {'CUDA s':>8} | {'CPU/CUDA':>8} | {'numbers':>7} | {'differ':>6} | {'max |diff|':>10}"
    print(header)
    print("-" * len(header))
    score_features(trajectories(4 * args.episode_length, args.episode_length), CKNNAConfig(device="cuda"))
    for n in args.sizes:
        features = trajectories(n, args.episode_length)
        on_cuda, cuda_seconds = timed_score(features, "cuda", args.n_permutations)
        if n > args.cpu_max_n:
            print(
                f"{n:>7} | {'-':>8} | {cuda_seconds:>8.1f} | {'-':>8} | {'-':>7} | {'-':>6} | {'-':>10}",
                flush=True,
            )
            continue
        on_cpu, cpu_seconds = timed_score(features, "cpu", args.n_permutations)
        cpu_numbers, cuda_numbers = numbers(on_cpu), numbers(on_cuda)
        if cpu_numbers.keys() != cuda_numbers.keys():
            raise SystemExit(f"N={n}: the two records hold different fields.")
        diffs = [abs(cpu_numbers[key] - cuda_numbers[key]) for key in cpu_numbers]
        differ = sum(d > 0 for d in diffs)
        print(
            f"{n:>7} | {cpu_seconds:>8.1f} | {cuda_seconds:>8.1f} | {cpu_seconds / cuda_seconds:>8.1f} | "
            f"{len(diffs):>7} | {differ:>6} | {max(diffs):>10.1e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
