"""Feat B's graph under the null's pairings of unequal episodes: searched again, or read off graph B.

A pairing of episodes of unequal length repeats some rows of feat B and drops others, so it is
not a permutation and graph B cannot simply be relabelled. Both ways run in one process on
``bench_metrics.py``'s feat B (d=8, float64) cut into episodes of 120, 200 and 280 frames
(``bench_assessment.py --unequal-episodes``), for the null's 200 pairings at k_max=50 with
graph B holding 50 spare neighbours, as the assessment builds it:

* before: ``knn_graph(b[sigma], 50)`` for every pairing (the k-d tree search);
* now: :func:`lerobot_cknna.metrics.permutation._expanded`, which reads each row off graph B
  and searches only the rows it cannot certify.

Printed per N: the seconds of each, their ratio, the rows searched again, whether every graph
is the same index for index and value for value, and one bare ``cknna(a, b, k=10)`` for scale.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_unequal_null.py --sizes 8000 50000
"""

import argparse
import time

import numpy as np
import torch
from bench_assessment import EPISODE_LENGTH, N_PERMUTATIONS, episode_rows
from bench_metrics import make_features

import lerobot_cknna.metrics.permutation as permutation
from lerobot_cknna.metrics.alignment import cknna
from lerobot_cknna.metrics.knn import knn_graph
from lerobot_cknna.metrics.statistics import _graph, _pairings

K_MAX = 50


def run(n: int) -> None:
    a, b = make_features(n, torch.float64, "cpu")
    start = time.perf_counter()
    cknna(a, b, k=10)
    bare = time.perf_counter() - start
    graph_b = _graph(b, K_MAX, None, K_MAX)
    pairings, _ = _pairings(
        "episode", episode_rows(n, unequal=True), n, N_PERMUTATIONS, np.random.default_rng(0)
    )
    searched_rows = []
    search = permutation.knn_rows

    def counted_search(feats, rows, *args):
        searched_rows.append(len(rows))
        return search(feats, rows, *args)

    seconds, graphs = {}, {}
    permutation.knn_rows = counted_search
    for name, build in (
        ("searched", lambda sigma: knn_graph(b[sigma], K_MAX)),
        ("expanded", lambda sigma: permutation._expanded(b, graph_b, sigma, K_MAX, None)),
    ):
        start = time.perf_counter()
        graphs[name] = [build(sigma) for sigma in pairings]
        seconds[name] = time.perf_counter() - start
    permutation.knn_rows = search
    same = all(
        torch.equal(old.indices, new.indices) and torch.equal(old.similarities, new.similarities)
        for old, new in zip(graphs["searched"], graphs["expanded"], strict=True)
    )
    print(f"\nN={n} ({len(pairings)} pairings, k_max={K_MAX}; one bare cknna(a, b, k=10): {bare:.2f} s)")
    for name in ("searched", "expanded"):
        print(f"  {name:<9} {seconds[name]:>8.2f} s  {seconds[name] / bare:>6.2f} x bare")
    print(
        f"  searched / expanded: {seconds['searched'] / seconds['expanded']:.1f}x; rows searched again by "
        f"the expansion: {sum(searched_rows)} of {n * len(pairings)}; every graph the same: {same}",
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[8000, 50000])
    for n in parser.parse_args().sizes:
        if n < 3 * EPISODE_LENGTH:
            raise SystemExit(f"N={n} is too small for episodes of about {EPISODE_LENGTH} frames.")
        run(n)


if __name__ == "__main__":
    main()
