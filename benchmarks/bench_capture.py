"""Feature capture on the real policy classes: encode-only against ``select_action``, and hook overhead.

For every tiny LIBERO-shaped build (:mod:`lerobot_cknna.testing.tiny_policies`), on the same batch,
in one process and interleaved so that machine noise hits both sides alike:

* ``select_action``: the policy's own inference after a ``reset`` (so the model runs; the
  full action generation, e.g. every denoising step);
* ``capture``: the same with the feat A hook attached (its overhead is the ratio);
* ``encode-only``: :func:`lerobot_cknna.capture.encode_features`, the same ``select_action``
  stopped by the hook as soon as feat A is computed.

Tiny builds are far narrower than real checkpoints, so absolute times say little; the
ratios show how much of each policy's inference the encode-only path skips.

Usage::

    .venv/bin/python benchmarks/bench_capture.py [--batch_size 8] [--repeats 10] [--types act smolvla]
"""

import argparse
import statistics
import time

import torch

from lerobot_cknna.capture.hooks import capture_features, encode_features
from lerobot_cknna.testing.tiny_policies import TINY_CONFIGS, build_tiny_policy, libero_batch


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(policy_type: str, batch_size: int, repeats: int) -> dict[str, float]:
    """Median seconds of each way to get feat A for one batch."""
    policy = build_tiny_policy(policy_type)
    batch = libero_batch(policy, batch_size)

    def select_action():
        policy.reset()
        with torch.no_grad():
            policy.select_action(dict(batch))

    def captured():
        with capture_features(policy) as capture:
            select_action()
            capture.pop_all(batch_size, required=True)

    ways = {
        "select_action": select_action,
        "capture": captured,
        "encode-only": lambda: encode_features(policy, batch),
    }
    for fn in ways.values():
        fn()
    times = {name: [] for name in ways}
    for _ in range(repeats):
        for name, fn in ways.items():
            times[name].append(_timed(fn))
    return {name: statistics.median(values) for name, values in times.items()}


def main():
    """Measure every requested type and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--types", nargs="+", default=sorted(TINY_CONFIGS))
    args = parser.parse_args()
    print(f"batch {args.batch_size}, median of {args.repeats}, torch threads {torch.get_num_threads()}")
    print(f"{'type':<10} {'select_action ms':>17} {'capture ms':>11} {'encode-only ms':>15} "
          f"{'capture overhead':>17} {'encode-only speed-up':>21}")  # fmt: skip
    for policy_type in args.types:
        t = measure(policy_type, args.batch_size, args.repeats)
        overhead = t["capture"] / t["select_action"] - 1
        print(
            f"{policy_type:<10} {1e3 * t['select_action']:>17.1f} {1e3 * t['capture']:>11.1f} "
            f"{1e3 * t['encode-only']:>15.1f} {100 * overhead:>16.1f}% {t['select_action'] / t['encode-only']:>20.1f}x"
        )


if __name__ == "__main__":
    main()
