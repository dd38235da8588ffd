"""LIBERO simulation: env steps per second with feature capture against plain ``lerobot-eval``.

Runs ``lerobot-eval`` and ``lerobot-cknna`` with the same flags and seeds (same episodes,
same env steps), alternating so that machine noise hits both alike, and reads the rollout
time LeRobot itself records (``overall.eval_s`` in ``eval_info.json``, measured inside
``eval_policy_all``; it leaves out start-up and lerobot-cknna's scoring afterwards). The
ratio is what capture costs a simulation run, at each batch size of async envs (the same episodes,
run 1, 2 or 4 envs at a time).

Default policy: the tiny offline SmolVLA (random weights: it never succeeds, so every episode
runs its full length). Pass ``--policy_path`` for a real checkpoint.

Usage::

    .venv/bin/python benchmarks/bench_simulation.py [--repeats 2] [--episode_length 20] \
        [--n_episodes 4] [--batch_sizes 1 2 4]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from lerobot_cknna.drivers.libero.offline import prepare_libero, select_mujoco_backend
from lerobot_cknna.testing.tiny_policies import save_tiny_policy

COMMANDS = ("lerobot-eval", "lerobot-cknna")


def rollout_seconds(
    command: str, policy_path: Path, out: Path, batch_size: int, args: argparse.Namespace
) -> float:
    executable = Path(sys.executable).with_name(command)
    flags = [
        f"--policy.path={policy_path}", "--env.type=libero", "--env.task=libero_spatial", "--env.task_ids=[0]",
        f"--env.episode_length={args.episode_length}", f"--eval.n_episodes={args.n_episodes}",
        f"--eval.batch_size={batch_size}", "--seed=1000", f"--output_dir={out}",
        # lerobot-cknna renders LIBERO at the policy's camera size; plain lerobot-eval is told the same.
        "--env.observation_height=256", "--env.observation_width=256",
    ]  # fmt: skip
    if command == "lerobot-cknna":
        flags += ["--cknna.k=3", "--cknna.n_permutations=10", "--cknna.report=false"]
    done = subprocess.run([str(executable), *flags], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{done.stderr[-3000:]}")
    return json.loads((out / "eval_info.json").read_text())["overall"]["eval_s"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--episode_length", type=int, default=20)
    parser.add_argument("--n_episodes", type=int, default=4)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--policy_path", type=Path, default=None)
    args = parser.parse_args()
    if any(size < 1 or args.n_episodes % size for size in args.batch_sizes):
        parser.error(
            "every --batch_sizes value must divide --n_episodes, so that each runs the same episodes."
        )
    # Both commands inherit the same offline LIBERO config and MuJoCo backend.
    prepare_libero()
    select_mujoco_backend()
    with tempfile.TemporaryDirectory() as tmp:
        policy_path = args.policy_path
        if policy_path is None:
            policy_path = Path(tmp) / "smolvla"
            save_tiny_policy("smolvla", policy_path)
        seconds = {(size, command): [] for size in args.batch_sizes for command in COMMANDS}
        for repeat in range(args.repeats):
            for size, command in seconds:
                out = Path(tmp) / f"{command}-{size}-{repeat}"
                seconds[size, command].append(rollout_seconds(command, policy_path, out, size, args))
    steps = args.n_episodes * args.episode_length
    print(
        f"{steps} env steps per run ({args.n_episodes} episodes x {args.episode_length}), "
        f"{args.repeats} runs each; async vector envs (LeRobot makes a sync one for a single env)"
    )
    print(f"{'batch':>6}  {'run':<16}{'rollout s (median)':>20}{'env steps/s':>14}{'capture / plain':>17}")
    for size in args.batch_sizes:
        medians = {command: statistics.median(seconds[size, command]) for command in COMMANDS}
        for command, median in medians.items():
            ratio = f"{medians[command] / medians['lerobot-eval']:.3f}" if command == "lerobot-cknna" else ""
            print(f"{size:>6}  {command:<16}{median:>20.1f}{steps / median:>14.2f}{ratio:>17}")
    print("target: capture / plain under 1.05 at every batch size")


if __name__ == "__main__":
    main()
