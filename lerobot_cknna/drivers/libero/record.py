"""Record a small LeRobotDataset from the LIBERO simulator, offline, with a scripted arm motion.

Each frame is what a policy receives in ``lerobot-eval`` before its own preprocessor: LeRobot's
LIBERO env (``make_env``), ``preprocess_observation``, the task description and the env
preprocessor (``LiberoProcessorStep``: images rotated 180 degrees, 8-D ``observation.state`` =
eef position, eef axis-angle, gripper joint positions). Stored keys:

* ``observation.images.image``, ``observation.images.image2``: (3, 256, 256) images, stored as PNG
  (no video codec needed) and loaded back as float32 in [0, 1], bit-identical to the env's;
* ``observation.state``: (8,) float32;
* ``action``: (7,) float32, the scripted action applied after the frame's observation;
* the task's language instruction.

From the command line: ``lerobot-cknna-record-libero --root /tmp/libero_sim --n_steps 20``.
"""

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.envs.configs import LiberoEnv
from lerobot.envs.factory import make_env, make_env_pre_post_processors
from lerobot.envs.utils import preprocess_observation

from lerobot_cknna.drivers.libero.offline import prepare_libero, select_mujoco_backend

IMAGE_KEYS = ("observation.images.image", "observation.images.image2")
# The dataset id written into recorded datasets' metadata (nothing is pushed).
RECORDED_REPO_ID = "local/libero_spatial_sim"
STATE_NAMES = ["eef_x", "eef_y", "eef_z", "eef_ax", "eef_ay", "eef_az", "gripper_q0", "gripper_q1"]
ACTION_NAMES = ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"]
# The size LeRobot's LIBERO datasets and checkpoints use (lerobot 0.6 renders 360 x 360 unless told).
IMAGE_SIZE = 256

# Scripted motion, in the env's normalised [-1, 1] delta action (OSC_POSE: 1.0 = 5 cm, 0.5 rad).
_POSITION_AMPLITUDE = 0.5
_ROTATION_AMPLITUDE = 0.15
_N_WAVES = 3
_PERIOD_STEPS = (10.0, 40.0)


def dataset_features() -> dict[str, dict]:
    """LeRobotDataset features of the recorded frames."""
    image = {"dtype": "image", "shape": (3, IMAGE_SIZE, IMAGE_SIZE), "names": ["channels", "height", "width"]}
    return {
        **{key: dict(image) for key in IMAGE_KEYS},
        "observation.state": {"dtype": "float32", "shape": (8,), "names": STATE_NAMES},
        "action": {"dtype": "float32", "shape": (7,), "names": ACTION_NAMES},
    }


def scripted_actions(n_steps: int, seed: int | Sequence[int]) -> np.ndarray:
    """A smooth, deterministic end-effector motion: sums of slow random sine waves per axis.

    The gripper (last column, -1 open, +1 closed) is open for the first half and closed after.

    Args:
        n_steps: number of actions.
        seed: random seed (an int or ints for ``np.random.default_rng``); same seed, same actions.

    Returns:
        (n_steps, 7) float32 array in [-1, 1].
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps)[:, None, None]
    periods = rng.uniform(*_PERIOD_STEPS, size=(1, 6, _N_WAVES))
    phases = rng.uniform(0, 2 * np.pi, size=(1, 6, _N_WAVES))
    weights = rng.dirichlet(np.ones(_N_WAVES), size=6)[None]
    waves = (weights * np.sin(2 * np.pi * t / periods + phases)).sum(-1)
    amplitude = np.array([_POSITION_AMPLITUDE] * 3 + [_ROTATION_AMPLITUDE] * 3)
    gripper = np.where(np.arange(n_steps) < n_steps // 2, -1.0, 1.0)[:, None]
    return np.concatenate([waves * amplitude, gripper], axis=1).astype(np.float32)


def _to_frame(observation: dict, action: np.ndarray) -> dict:
    """One dataset frame from a processed (batch of one) observation and the action taken after it."""
    frame = {
        # Processed images are uint8/255 in float32. LeRobot would truncate float*255 to uint8
        # (datasets/image_writer.py:66), which can lose a level: store the exact uint8 instead.
        key: (observation[key][0] * 255).round().to(torch.uint8).numpy()
        for key in IMAGE_KEYS
    }
    frame["observation.state"] = observation["observation.state"][0].numpy()
    frame["action"] = action
    frame["task"] = observation["task"][0]
    return frame


def record_libero_dataset(
    root: str | Path,
    repo_id: str = RECORDED_REPO_ID,
    suite: str = "libero_spatial",
    task_ids: Sequence[int] = (0, 1),
    episodes_per_task: int = 1,
    n_steps: int = 20,
    seed: int = 0,
    fps: int = 10,
) -> LeRobotDataset:
    """Record ``len(task_ids) * episodes_per_task`` scripted episodes of ``n_steps`` frames.

    One env at a time (about 3 GB each). Episode ``e`` of a task starts from the task's ``e``-th
    LIBERO init state, as ``lerobot-eval`` does (each reset moves one init state further). An
    episode that solves its task ends there with the frames it has.

    Args:
        root: dataset folder; must not exist yet.
        repo_id: dataset id stored in the metadata (nothing is pushed).
        suite: LIBERO suite, e.g. ``"libero_spatial"``.
        task_ids: tasks of the suite to record.
        episodes_per_task: episodes per task.
        n_steps: frames per episode.
        seed: seeds the env resets and the scripted actions.
        fps: frame rate written to the metadata.

    Returns:
        The dataset, loaded back from ``root``.
    """
    # Before make_env imports libero, robosuite and mujoco.
    select_mujoco_backend()
    prepare_libero()
    root = Path(root)
    dataset = LeRobotDataset.create(
        repo_id, fps, dataset_features(), root=root, robot_type="panda", use_videos=False
    )
    for task_id in task_ids:
        env_cfg = LiberoEnv(
            task=suite, task_ids=[task_id], observation_height=IMAGE_SIZE, observation_width=IMAGE_SIZE
        )
        # No policy: the LIBERO processing every policy but XVLA gets (lerobot/envs/factory.py).
        env_preprocessor, _ = make_env_pre_post_processors(env_cfg, policy_cfg=None)
        env = make_env(env_cfg, n_envs=1)[suite][task_id]
        try:
            for episode in range(episodes_per_task):
                actions = scripted_actions(n_steps, seed=[seed, task_id, episode])
                raw, _ = env.reset(seed=seed + episode)
                for step, action in enumerate(actions):
                    observation = preprocess_observation(raw)
                    observation["task"] = list(env.call("task_description"))
                    observation = env_preprocessor(observation)
                    dataset.add_frame(_to_frame(observation, action))
                    raw, _, terminated, truncated, _ = env.step(action[None])
                    if terminated[0] or truncated[0]:
                        logging.info("Task %d episode %d ended after %d steps", task_id, episode, step + 1)
                        break
                dataset.save_episode()
                logging.info("Recorded %s task %d episode %d", suite, task_id, episode)
        finally:
            env.close()
    dataset.finalize()
    return LeRobotDataset(repo_id, root=root)


def record_once(root: str | Path, **settings) -> Path:
    """``root`` holding a recorded dataset: recorded with ``settings`` unless one is already there.

    The recording goes to ``ROOT.partial`` first and is renamed when complete, so an interrupted
    recording is never taken for a finished one.

    Args:
        root: dataset folder.
        **settings: :func:`record_libero_dataset`'s keyword arguments.
    """
    root = Path(root)
    if not (root / "meta" / "info.json").is_file():
        partial = root.with_name(f"{root.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        record_libero_dataset(partial, **settings)
        partial.rename(root)
    return root
