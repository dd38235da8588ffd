"""The complete assessment (k sweep, permutation null, jackknife) against one bare CKNNA.

The data are those of ``bench_metrics.py`` (feat A d=2048, feat B d=8, a shared latent
plus noise, L2-normalized, float64 as ``lerobot-cknna-score`` passes them), cut into
episodes of 200 frames. The assessment is the production one: k sweep 5/10/20/50,
200 episode permutations, a delete-a-group jackknife over at most
``scoring.JACKKNIFE_GROUPS`` groups. Printed per N, for this implementation and, where
asked, the previous one (the direct loops of
:mod:`lerobot_cknna.testing.reference_statistics`) in the same process:

* each component: feat A graph, feat B graph, k sweep (observed scores), null, jackknife;
* the complete assessment (the sum) as a multiple of one bare ``cknna(a, b, k=10)``;
* the ratio previous / this per component, and the largest difference of any null
  sample or interval end between the two;
* memory (MiB): the resident set before this implementation's assessment (features built, one
  bare CKNNA done), its peak while the assessment runs (sampled every 10 ms), and the process's
  peak (``ru_maxrss``, which no sampling can miss) before and after it, all before the previous
  one runs.

Usage::

    .venv/bin/python benchmarks/bench_assessment.py --sizes 8000
    nice -n 19 .venv/bin/python benchmarks/bench_assessment.py --sizes 50000 --skip-old
"""

import argparse
import resource
import threading
import time

import numpy as np
import psutil
import torch
from bench_metrics import make_features

from lerobot_cknna.metrics.alignment import cknna
from lerobot_cknna.metrics.observed import Observed
from lerobot_cknna.metrics.statistics import (
    FAST_ESTIMATORS,
    _graph,
    _intervals,
    _pairings,
    _scores,
    jackknife_groups,
)
from lerobot_cknna.results.scoring import JACKKNIFE_GROUPS
from lerobot_cknna.testing.reference_statistics import REFERENCE_ESTIMATORS

KS = (5, 10, 20, 50)
EPS = 1e-6
EPISODE_LENGTH = 200
# --unequal-episodes: LIBERO's usual case, lengths around the same mean; the null's pairings
# then repeat and drop frames, so feat B's graph is searched again for each of them.
UNEQUAL_EPISODE_LENGTHS = (120, 200, 280)
N_PERMUTATIONS = 200
LEVEL = 0.95
COMPONENTS = ("feat A graph", "feat B graph", "k sweep", "null", "jackknife")


def _timed(seconds: dict, name: str, work):
    start = time.perf_counter()
    out = work()
    seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
    return out


def episode_rows(n: int, unequal: bool) -> list[torch.Tensor]:
    """The rows of each episode: all of ``EPISODE_LENGTH`` frames, or cycling through unequal lengths."""
    if not unequal:
        return list(torch.arange(n).split(EPISODE_LENGTH))
    lengths = [UNEQUAL_EPISODE_LENGTHS[i % len(UNEQUAL_EPISODE_LENGTHS)] for i in range(n // 100)]
    ends = np.minimum(np.cumsum(lengths), n)
    return [rows for rows in torch.arange(n).tensor_split(torch.from_numpy(ends[:-1])) if len(rows)]


def assessment(a, b, estimators, unequal: bool = False) -> tuple[dict[str, float], dict]:
    """The steps of :func:`lerobot_cknna.metrics.statistics.assess` (no exclusion), each timed.

    Returns the seconds per component and the numbers to compare: null samples and interval ends.
    """
    n, k_max = a.shape[0], max(KS)
    episodes = episode_rows(n, unequal)
    seconds: dict[str, float] = {}
    graph_a = _timed(seconds, "feat A graph", lambda: _graph(a, k_max, None, estimators.spare_a(k_max)))
    graph_b = _timed(seconds, "feat B graph", lambda: _graph(b, k_max, None, estimators.spare_b(k_max)))
    observed_data = Observed(a, b, graph_a, graph_b, KS, None, EPS)
    observed = _timed(
        seconds,
        "k sweep",
        lambda: _scores(graph_a, graph_b, KS, None, EPS, self_terms=observed_data.self_terms),
    )
    pairings, _ = _timed(
        seconds, "null", lambda: _pairings("episode", episodes, n, N_PERMUTATIONS, np.random.default_rng(0))
    )
    ((samples, _),) = _timed(
        seconds, "null", lambda: estimators.null_samples_of_sets([observed_data], pairings)
    )
    groups = jackknife_groups(episodes, JACKKNIFE_GROUPS)
    estimates = _timed(
        seconds,
        "jackknife",
        lambda: estimators.jackknife_estimates(observed_data, groups),
    )
    intervals = _intervals(estimates, observed, LEVEL)
    numbers = {
        "null": np.stack([samples[metric] for metric in sorted(samples)]),
        "interval": np.array([[x.low, x.high] for metric in sorted(intervals) for x in intervals[metric]]),
    }
    return seconds, numbers


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class SampledPeakRSS:
    """The largest resident set of this process while the block runs, in MB, sampled every 10 ms."""

    def __enter__(self) -> "SampledPeakRSS":
        self._process = psutil.Process()
        self.before_mb = self.peak_mb = self._process.memory_info().rss / 2**20
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak_mb = max(self.peak_mb, self._process.memory_info().rss / 2**20)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run(n: int, with_old: bool, unequal: bool) -> None:
    a, b = make_features(n, torch.float64, "cpu")
    start = time.perf_counter()
    cknna(a, b, k=10)
    bare = time.perf_counter() - start
    peak_before = _peak_mb()
    with SampledPeakRSS() as memory:
        new, new_numbers = assessment(a, b, FAST_ESTIMATORS, unequal)
    peak = _peak_mb()
    old, old_numbers = assessment(a, b, REFERENCE_ESTIMATORS, unequal) if with_old else (None, None)
    print(
        f"\nN={n}: one bare cknna(a, b, k=10): {bare:.2f} s; RSS before the new assessment "
        f"{memory.before_mb:.0f} MB, its sampled peak {memory.peak_mb:.0f} MB; process peak (ru_maxrss) "
        f"{peak_before:.0f} MB before it, {peak:.0f} MB after"
    )
    print(f"{'component':<14} {'new s':>9} {'x bare':>7} | {'old s':>9} {'x bare':>7} | {'old/new':>8}")
    for name in (*COMPONENTS, "complete"):
        new_s = sum(new.values()) if name == "complete" else new[name]
        cells = f"{name:<14} {new_s:>9.2f} {new_s / bare:>7.2f}"
        if old is None:
            print(f"{cells} | {'(previous implementation not run: --skip-old)':>27}")
            continue
        old_s = sum(old.values()) if name == "complete" else old[name]
        print(f"{cells} | {old_s:>9.2f} {old_s / bare:>7.2f} | {old_s / new_s:>8.1f}", flush=True)
    if old is not None:
        for what in ("null", "interval"):
            difference = np.nanmax(np.abs(new_numbers[what] - old_numbers[what]))
            same_nan = np.array_equal(np.isnan(new_numbers[what]), np.isnan(old_numbers[what]))
            print(f"largest |new - old| over every {what} number: {difference:.1e} (same NaNs: {same_nan})")


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[8000, 50000])
    parser.add_argument("--skip-old", action="store_true", help="do not run the previous implementation")
    parser.add_argument(
        "--unequal-episodes",
        action="store_true",
        help=f"episodes of {'/'.join(map(str, UNEQUAL_EPISODE_LENGTHS))} frames in turn",
    )
    args = parser.parse_args()
    lengths = "/".join(map(str, UNEQUAL_EPISODE_LENGTHS)) if args.unequal_episodes else EPISODE_LENGTH
    print(
        f"complete assessment: k sweep {KS}, {N_PERMUTATIONS} episode permutations, jackknife over "
        f"<= {JACKKNIFE_GROUPS} groups; episodes of {lengths} frames; float64 features; "
        f"torch threads={torch.get_num_threads()}"
    )
    for n in args.sizes:
        run(n, with_old=not args.skip_old, unequal=args.unequal_episodes)


if __name__ == "__main__":
    main()
