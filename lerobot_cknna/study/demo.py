"""The embedded default (``make demo``): a real LIBERO simulation and a replay, with nothing downloaded.

1. Saves a tiny SmolVLA of the real LeRobot class (local SmolVLM config and tokenizer,
   random weights) as a policy directory.
2. Records a small LIBERO dataset (libero_spatial, two tasks, four scripted episodes of 12
   frames) from the simulator.
3. Runs ``lerobot-cknna`` in simulation: LeRobot's own LIBERO evaluation loop, two
   vectorized envs, features captured at every step.
4. Runs ``lerobot-cknna`` in replay on the recorded dataset.

Both runs print their numbers and write a report. The weights are random, so the numbers
describe an untrained architecture on real robot trajectories: what the pipeline, nulls and
intervals look like, not how well any trained policy aligns.
"""

import logging
import subprocess
import sys
from pathlib import Path

from lerobot_cknna.drivers.libero.record import RECORDED_REPO_ID, record_once
from lerobot_cknna.testing.tiny_policies import save_tiny_policy
from lerobot_cknna.utils.io import default_run_dir

RANDOM_WEIGHTS_NOTE = (
    "The tiny SmolVLA has random weights: its CKNNA measures an untrained architecture against real "
    "LIBERO state trajectories. Expect values near the permutation null; a trained checkpoint "
    "(--policy.path=HuggingFaceVLA/smolvla_libero) is what answers the research question."
)


def prepare_demo_assets(assets: Path, n_steps: int = 12) -> tuple[Path, Path]:
    """The tiny policy directory and the recorded dataset, made once and reused."""
    policy_dir = assets / "tiny_smolvla"
    if not (policy_dir / "model.safetensors").is_file():
        save_tiny_policy("smolvla", policy_dir)
    dataset_root = record_once(
        assets / "libero_spatial_sim", task_ids=(0, 1), episodes_per_task=2, n_steps=n_steps
    )
    return policy_dir, dataset_root


def run_cknna(args: list[str]) -> None:
    """``lerobot-cknna ARGS`` in a fresh process, as a user would type it."""
    logging.info("$ lerobot-cknna " + " ".join(args))
    subprocess.run([sys.executable, "-m", "lerobot_cknna.scripts.lerobot_cknna", *args], check=True)


def run_demo(output_root: Path, episodes: int = 4, episode_length: int = 20) -> tuple[Path, Path]:
    """Run the demo's simulation and replay; returns their run directories."""
    policy_dir, dataset_root = prepare_demo_assets(Path(output_root) / "demo_assets")
    sim_dir = default_run_dir("demo_libero_sim", output_root)
    replay_dir = sim_dir.with_name(sim_dir.name.replace("demo_libero_sim", "demo_libero_replay"))
    common = [f"--policy.path={policy_dir}", "--cknna.k=5"]
    run_cknna([
        *common, "--env.type=libero", "--env.task=libero_spatial", "--env.task_ids=[0]",
        f"--env.episode_length={episode_length}", f"--eval.n_episodes={episodes}",
        "--eval.batch_size=2", "--policy.n_action_steps=1", f"--output_dir={sim_dir}",
    ])  # fmt: skip
    run_cknna([
        *common, f"--dataset.repo_id={RECORDED_REPO_ID}", f"--dataset.root={dataset_root}",
        f"--output_dir={replay_dir}",
    ])  # fmt: skip
    return sim_dir, replay_dir
