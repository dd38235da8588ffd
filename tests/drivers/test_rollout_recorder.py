"""The bookkeeping of simulation mode against LeRobot's own rules (lerobot_eval.eval_policy)."""

import einops
import numpy as np
import pytest
import torch

from lerobot_cknna.drivers.rollout_recorder import SimulationRecorder, _Rollout, step_successes
from lerobot_cknna.results.features_io import FeatureBuffer


def lerobot_success(dones: torch.Tensor, successes: torch.Tensor) -> torch.Tensor:
    """eval_policy's rule, written from its definition: any success up to one step after the first done."""
    n_steps = dones.shape[1]
    done_indices = torch.argmax(dones.to(int), dim=1)
    mask = (torch.arange(n_steps) <= einops.repeat(done_indices + 1, "b -> b s", s=n_steps)).int()
    return einops.reduce(successes * mask, "b n -> b", "any")


def final_info(successes: np.ndarray) -> dict:
    """What a vector env that auto-resets on the same step reports: ``final_info`` when an env finished."""
    return {"final_info": {"is_success": successes}} if successes.any() else {}


def per_step_success(successes: np.ndarray) -> dict:
    """What lerobot 0.6's LIBERO env reports: ``is_success`` on every step, no ``final_info``."""
    return {"is_success": successes}


def play(rollout: _Rollout, terminated: np.ndarray, successes: np.ndarray, info=final_info) -> None:
    for step in range(terminated.shape[1]):
        rollout.observe_step(
            terminated[:, step], np.zeros(rollout.num_envs, dtype=bool), info(successes[:, step])
        )


@pytest.mark.parametrize("info", [final_info, per_step_success])
def test_episode_success_follows_lerobots_rule(info):
    rng = np.random.default_rng(0)
    for _ in range(50):
        rollout = _Rollout("libero_spatial", task_id=0, first_episode=0, num_envs=4, max_steps=12)
        terminated = rng.random((4, 12)) < 0.15
        successes = rng.random((4, 12)) < 0.3
        play(rollout, terminated, successes, info)
        dones = torch.from_numpy(np.stack(rollout.done_history, axis=1))
        expected = lerobot_success(dones, torch.from_numpy(successes)).numpy()
        assert (rollout.episode_success() == expected).all()


def test_step_successes_reads_every_form_lerobot_eval_reads():
    assert step_successes({"is_success": np.array([True, False])}, 2).tolist() == [True, False]
    assert step_successes({"final_info": {"is_success": np.array([False, True])}}, 2).tolist() == [
        False,
        True,
    ]
    assert step_successes({"final_info": [None, {"is_success": True}]}, 2).tolist() == [False, True]
    assert step_successes({"final_info": {}, "is_success": np.array([True, True])}, 2).tolist() == [
        False,
        False,
    ]
    assert step_successes({}, 3).tolist() == [False, False, False]


def test_steps_after_an_env_is_done_are_masked_and_extra_episodes_dropped(tmp_path):
    recorder = SimulationRecorder(FeatureBuffer(tmp_path), n_episodes=2)
    recorder._rollout = rollout = _Rollout(
        "libero_spatial", task_id=0, first_episode=0, num_envs=3, max_steps=5
    )
    terminated = np.zeros((3, 5), dtype=bool)
    terminated[0, 1] = True  # env 0 finishes at step 1 (successfully)
    successes = np.zeros((3, 5), dtype=bool)
    successes[0, 1] = True
    for step in range(5):
        feat = torch.arange(3.0)[:, None].repeat(1, 4) + 10 * step
        rollout.samples.append((step, feat, feat[:, :2], ["t0", "t1", "t2"], ~rollout.done, None))
        play_one = {"final_info": {"is_success": successes[:, step]}} if successes[:, step].any() else {}
        rollout.observe_step(terminated[:, step], np.zeros(3, dtype=bool), play_one)
    recorder._finish_rollout()
    features = recorder.buffer.features()
    # env 2 is the third episode of a 2-episode evaluation: dropped; env 0 stops after step 1.
    assert features.episode_index.tolist() == [0, 1, 0, 1, 1, 1, 1]
    assert features.frame_index.tolist() == [0, 0, 1, 1, 2, 3, 4]
    assert features.success.tolist() == [True, False, True, False, False, False, False]
    assert features.feat_a[:, 0].tolist() == [0.0, 1.0, 10.0, 11.0, 21.0, 31.0, 41.0]
    assert recorder.task_suites == {"t0": "libero_spatial", "t1": "libero_spatial"}


def test_a_stopped_evaluation_says_what_it_kept_and_which_episodes_it_lost(tmp_path):
    recorder = SimulationRecorder(FeatureBuffer(tmp_path), n_episodes=2)
    recorder._episodes_kept = {("libero_spatial", 0): 0, ("libero_spatial", 1): 0, ("libero_goal", 3): 0}
    recorder._rollout = finished = _Rollout(
        "libero_spatial", task_id=0, first_episode=0, num_envs=2, max_steps=3
    )
    for step in range(3):
        finished.samples.append(
            (step, torch.ones(2, 4), torch.ones(2, 2), ["t0", "t0"], ~finished.done, None)
        )
        finished.observe_step(np.zeros(2, dtype=bool), np.zeros(2, dtype=bool), {})
    assert finished.complete
    recorder._finish_rollout()
    cut_short = _Rollout("libero_spatial", task_id=1, first_episode=0, num_envs=2, max_steps=3)
    cut_short.observe_step(np.zeros(2, dtype=bool), np.zeros(2, dtype=bool), {})
    assert not cut_short.complete
    recorder._stopped_during = cut_short
    assert recorder.losses() == {
        "episodes_kept": 2,
        "episodes_planned": 6,
        "stopped_during": {"suite": "libero_spatial", "task_id": 1, "episodes": [0, 1]},
        "tasks": [
            {"suite": "libero_spatial", "task_id": 0, "episodes_kept": 2, "episodes_lost": 0},
            {"suite": "libero_spatial", "task_id": 1, "episodes_kept": 0, "episodes_lost": 2},
            {"suite": "libero_goal", "task_id": 3, "episodes_kept": 0, "episodes_lost": 2},
        ],
    }
    assert recorder.buffer.features().episode_index.unique().tolist() == [0, 1]
