"""A layer sweep (several feat A sets against one feat B) scored set by set and with feat B's work shared.

``--cknna.layers`` and ``--cknna.token_groups`` score every set like the headline at one k: its
own graph, the same 200 episode pairings, a jackknife over episodes. Scored set by set
(:func:`~lerobot_cknna.metrics.statistics.assess` once per set, the previous implementation),
feat B's graph is built again for every set, and under every pairing of episodes of unequal
length (LIBERO's usual case) feat B's graph is searched again for every set;
:func:`~lerobot_cknna.metrics.statistics.assess_sets` does that work once for all sets.

The data: feat A sets of ``bench_metrics.py``'s kind (a shared latent plus noise, d=2048 by
default, each set its own noise), feat B d=8, float64, episodes of 120/200/280 frames in turn
(``--equal-episodes``: 200). Printed, in one process: one bare ``cknna(a, b, k=10)``; both ways's
seconds and their multiple of the bare CKNNA; previous / shared; and the largest difference of any
number of the records (0: the same numbers).

Usage::

    .venv/bin/python benchmarks/bench_sets.py --n 4000 --sets 6
"""

import argparse
import time

import numpy as np
import torch
from bench_assessment import N_PERMUTATIONS, episode_rows
from bench_metrics import make_features

from lerobot_cknna.metrics.alignment import cknna
from lerobot_cknna.metrics.statistics import assess, assess_sets

K = 10
LEVEL = 0.95


def feature_sets(n: int, n_sets: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """``n_sets`` feat A sets seeing one latent through other noise, and feat B."""
    a, b = make_features(n, torch.float64, "cpu")
    sets = []
    for seed in range(n_sets):
        noise = torch.randn(a.shape, generator=torch.Generator().manual_seed(100 + seed), dtype=a.dtype)
        shifted = a + 0.02 * (seed + 1) * noise
        sets.append(shifted / shifted.norm(dim=1, keepdim=True))
    return sets, b


def _numbers(records: dict) -> np.ndarray:
    return np.array(
        [
            [item.value, *item.null.samples, item.interval.low, item.interval.high]
            for metric in sorted(records)
            for item in records[metric]
        ]
    )


def run(n: int, n_sets: int, unequal: bool) -> None:
    sets, b = feature_sets(n, n_sets)
    episode = torch.empty(n, dtype=torch.long)
    for index, rows in enumerate(episode_rows(n, unequal)):
        episode[rows] = index
    options = {"episode_index": episode, "n_permutations": N_PERMUTATIONS, "interval_level": LEVEL}
    start = time.perf_counter()
    cknna(sets[0], b, k=K)
    bare = time.perf_counter() - start
    start = time.perf_counter()
    separate = [assess(a, b, (K,), **options) for a in sets]
    previous = time.perf_counter() - start
    start = time.perf_counter()
    shared = assess_sets(sets, b, (K,), **options)
    now = time.perf_counter() - start
    difference = max(
        float(np.max(np.abs(_numbers(old) - _numbers(new))))
        for old, new in zip(separate, shared, strict=True)
    )
    print(f"\nN={n}, {n_sets} sets of d={sets[0].shape[1]}, {len(episode.unique())} episodes:")
    print(f"one bare cknna(a, b, k={K}): {bare:.2f} s; {n_sets} x bare = {n_sets * bare:.2f} s")
    print(f"set by set (previous): {previous:.2f} s = {previous / bare:.2f} x bare")
    print(f"feat B shared:         {now:.2f} s = {now / bare:.2f} x bare")
    print(
        f"previous / shared: {previous / now:.2f}; largest difference of any number: {difference:.1e}",
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=[4000])
    parser.add_argument("--sets", type=int, default=6)
    parser.add_argument("--equal-episodes", action="store_true", help="episodes of 200 frames")
    args = parser.parse_args()
    print(
        f"each set: k={K}, {N_PERMUTATIONS} episode permutations, jackknife ({LEVEL:.0%}); float64; "
        f"torch threads={torch.get_num_threads()}"
    )
    for n in args.n:
        run(n, args.sets, unequal=not args.equal_episodes)


if __name__ == "__main__":
    main()
