import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.envs.configs import LiberoEnv
from lerobot.envs.factory import make_env, make_env_pre_post_processors
from lerobot.envs.utils import preprocess_observation

from lerobot_cknna.drivers.libero.offline import prepare_libero, select_mujoco_backend
from lerobot_cknna.drivers.libero.record import IMAGE_KEYS, IMAGE_SIZE, scripted_actions
from tests.utils import REPO

SUITE = "libero_spatial"
REPO_ID = "local/libero_spatial_sim"
TASK_ID = 0
EPISODES = 2
N_STEPS = 8
SEED = 0


def fresh_reset():
    """The first observation of a new LeRobot LIBERO env, through lerobot-eval's env processing."""
    select_mujoco_backend()
    prepare_libero()
    env_cfg = LiberoEnv(
        task=SUITE, task_ids=[TASK_ID], observation_height=IMAGE_SIZE, observation_width=IMAGE_SIZE
    )
    env_preprocessor, _ = make_env_pre_post_processors(env_cfg, policy_cfg=None)
    env = make_env(env_cfg, n_envs=1)[SUITE][TASK_ID]
    try:
        raw, _ = env.reset(seed=SEED)
        observation = {**preprocess_observation(raw), "task": list(env.call("task_description"))}
        return raw, env_preprocessor(observation)
    finally:
        env.close()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Records through the command line, offline, for a user with no LIBERO setup.

    A fresh env is reset in this process meanwhile (the second CPU core); libero binds its config
    at import, so this process keeps the temporary one for the rest of the session.
    """
    home = tmp_path_factory.mktemp("home")
    root = tmp_path_factory.mktemp("data") / "libero_sim"
    log_path = root.parent / "record.log"
    user_env = {k: v for k, v in os.environ.items() if k != "LIBERO_CONFIG_PATH"}
    user_env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), HF_HUB_OFFLINE="1")
    command = [str(Path(sys.executable).with_name("lerobot-cknna-record-libero")), "--root", str(root)]
    command += ["--task_ids", str(TASK_ID), "--episodes_per_task", str(EPISODES), "--n_steps", str(N_STEPS)]
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, env=user_env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            with pytest.MonkeyPatch.context() as mp:
                for name in ("HOME", "XDG_CACHE_HOME"):
                    mp.setenv(name, user_env[name])
                mp.delenv("LIBERO_CONFIG_PATH", raising=False)
                raw, expected = fresh_reset()
            returncode = process.wait(timeout=900)
        finally:
            process.kill()
            process.wait()
    output = log_path.read_text()
    assert returncode == 0, output
    dataset = LeRobotDataset(REPO_ID, root=root)
    frames = [dataset[i] for i in range(len(dataset))]
    return SimpleNamespace(
        output=output, root=root, dataset=dataset, frames=frames, raw=raw, expected=expected
    )


def episode(frames, index):
    return frames[index * N_STEPS : (index + 1) * N_STEPS]


def test_command_line_says_where_the_dataset_is(recorded):
    assert f"Recorded {EPISODES} episodes, {EPISODES * N_STEPS} frames" in recorded.output
    assert f"to {recorded.root} " in recorded.output


def test_frames_have_the_shapes_a_libero_policy_gets(recorded):
    dataset = recorded.dataset
    assert dataset.num_episodes == EPISODES and dataset.num_frames == EPISODES * N_STEPS
    assert dataset.meta.video_keys == [] and sorted(dataset.meta.camera_keys) == sorted(IMAGE_KEYS)
    for frame in recorded.frames:
        for key in IMAGE_KEYS:
            image = frame[key]
            assert image.shape == (3, 256, 256) and image.dtype == torch.float32
            assert image.min() >= 0.0 and image.max() <= 1.0 and image.std() > 0
        assert frame["observation.state"].shape == (8,) and frame["observation.state"].dtype == torch.float32
        assert frame["action"].shape == (7,) and frame["action"].dtype == torch.float32
        assert torch.isfinite(frame["observation.state"]).all()


def test_episodes_frames_and_task(recorded):
    from libero.libero import benchmark

    frames = recorded.frames
    assert [int(f["episode_index"]) for f in frames] == [e for e in range(EPISODES) for _ in range(N_STEPS)]
    assert [int(f["frame_index"]) for f in frames] == list(range(N_STEPS)) * EPISODES
    language = benchmark.get_benchmark_dict()[SUITE]().get_task(TASK_ID).language
    assert {f["task"] for f in frames} == {language}
    assert all(int(f["task_index"]) == 0 for f in frames)


def test_actions_are_the_scripted_motion_and_the_arm_moves(recorded):
    for index in range(EPISODES):
        frames = episode(recorded.frames, index)
        actions = torch.stack([f["action"] for f in frames]).numpy()
        np.testing.assert_array_equal(actions, scripted_actions(N_STEPS, seed=[SEED, TASK_ID, index]))
        states = torch.stack([f["observation.state"] for f in frames])
        assert (states[1:] - states[:-1]).abs().sum(dim=1).gt(0).all()
        assert (states[-1, :3] - states[0, :3]).norm() > 0.005  # metres of end-effector travel
        assert states[-1, 6] < states[0, 6]  # the gripper closes in the second half


def test_each_episode_starts_from_the_next_libero_init_state(recorded):
    first, second = recorded.frames[0], recorded.frames[N_STEPS]
    assert not torch.equal(first["observation.images.image"], second["observation.images.image"])


def test_first_frame_is_what_lerobots_libero_processing_gives(recorded):
    from robosuite.utils.transform_utils import quat2axisangle

    first, expected = recorded.frames[0], recorded.expected
    for key in IMAGE_KEYS:
        torch.testing.assert_close(first[key], expected[key][0], rtol=0, atol=0)
    torch.testing.assert_close(first["observation.state"], expected["observation.state"][0], rtol=0, atol=0)
    assert first["task"] == expected["task"][0]

    # The same from the raw simulator, as LIBERO's own evaluation computes it: images rotated 180
    # degrees; state = eef position, eef axis-angle, gripper joint positions.
    camera = recorded.raw["pixels"]["image"][0][::-1, ::-1].transpose(2, 0, 1) / 255.0
    torch.testing.assert_close(first["observation.images.image"], torch.from_numpy(camera).float())
    robot = recorded.raw["robot_state"]
    state = np.concatenate(
        [robot["eef"]["pos"][0], quat2axisangle(robot["eef"]["quat"][0].copy()), robot["gripper"]["qpos"][0]]
    )
    np.testing.assert_allclose(first["observation.state"].numpy(), state, atol=1e-5)
