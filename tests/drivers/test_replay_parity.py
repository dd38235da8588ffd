from pathlib import Path

import numpy as np
import torch

from lerobot_cknna.drivers.replay_parity import raw_observation, recording_folder
from lerobot_cknna.drivers.rollout_recorder import EpisodeOrigin

FEATURES_MAP = {
    "action": "action",
    "agent_pos": "observation.state",
    "pixels/agentview_image": "observation.images.image",
    "robot_state/eef/pos": "observation.state.eef_pos",
}


def test_raw_observation_nests_the_env_paths_and_restores_uint8_pixels_under_the_camera_name():
    pixels = np.random.default_rng(0).integers(0, 256, size=(2, 6, 5, 3), dtype=np.uint8)
    frames = [
        {
            "observation.images.image": torch.from_numpy(pixels[i]).permute(2, 0, 1).float() / 255,
            "observation.state": torch.full((8,), float(i)),
            "observation.state.eef_pos": torch.tensor([i, 2.0 * i, 3.0]),
            "action": torch.zeros(7),
        }
        for i in range(2)
    ]
    observation = raw_observation(frames, FEATURES_MAP)
    assert set(observation) == {"agent_pos", "pixels", "robot_state"}
    assert observation["pixels"]["image"].dtype == np.uint8
    np.testing.assert_array_equal(observation["pixels"]["image"], pixels)
    np.testing.assert_array_equal(observation["robot_state"]["eef"]["pos"], [[0, 0, 3], [1, 2, 3]])
    assert observation["agent_pos"].shape == (2, 8)


def test_recording_folder_is_lerobots_task_folder_then_the_batch_then_the_env():
    root = Path("recordings")
    assert (
        recording_folder(root, EpisodeOrigin("libero_spatial", 3, 1, 0, 1))
        == root / "libero_spatial_3/batch_1"
    )
    assert (
        recording_folder(root, EpisodeOrigin("libero_10", 0, 2, 1, 2)) == root / "libero_10_0/batch_2/env_1"
    )
