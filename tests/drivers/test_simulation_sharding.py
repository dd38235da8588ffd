import math
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import pytest
from lerobot.envs.utils import _LazyAsyncVectorEnv

from lerobot_cknna.drivers.simulation_sharding import (
    SimulationShard,
    TaskRun,
    merge_task_runs,
    renumbered_videos,
    task_order,
)

ONE_ENV = SimpleNamespace(num_envs=1)
ENVS = {"libero_spatial": {0: ONE_ENV, 1: ONE_ENV, 2: ONE_ENV}, "libero_goal": {0: ONE_ENV, 1: ONE_ENV}}


def shard(rank: int, processes: int, split_tasks: bool = True) -> SimulationShard:
    state = SimpleNamespace(process_index=rank, num_processes=processes)
    return SimulationShard(state, Path("run"), split_tasks)


def spans(shares: list, n_episodes: int) -> list[tuple[str, int, range]]:
    return [(share.suite, share.task_id, share.episodes(n_episodes)) for share in shares]


def test_processes_take_equal_runs_of_batches_in_lerobot_evals_order():
    assert task_order(ENVS) == [("libero_spatial", 0), ("libero_spatial", 1), ("libero_spatial", 2),
                                ("libero_goal", 0), ("libero_goal", 1)]  # fmt: skip
    # Ten batches of one episode: the third task is split between the processes.
    assert spans(shard(0, 2).shares(ENVS, 2), 2) == [
        ("libero_spatial", 0, range(0, 2)),
        ("libero_spatial", 1, range(0, 2)),
        ("libero_spatial", 2, range(0, 1)),
    ]
    assert spans(shard(1, 2).shares(ENVS, 2), 2) == [
        ("libero_spatial", 2, range(1, 2)),
        ("libero_goal", 0, range(0, 2)),
        ("libero_goal", 1, range(0, 2)),
    ]
    assert [spans(shard(rank, 5).shares(ENVS, 2), 2)[0][2] for rank in range(5)] == [range(0, 2)] * 5
    assert shard(1, 2).directory == Path("run/shards/rank-1")


def lazy_async_env(num_envs: int) -> _LazyAsyncVectorEnv:
    """LeRobot's lazy async vector env, never started (its workers start on first use)."""
    space = gym.spaces.Box(-1.0, 1.0, (2,))
    return _LazyAsyncVectorEnv([lambda: None] * num_envs, space, space, {})


def test_a_task_of_several_sync_envs_per_batch_stays_whole():
    # Gymnasium resets a sync sub-env that finished early, so where a later batch starts depends
    # on the earlier ones; LeRobot freezes async ones, so their batches are independent.
    envs = {"libero_spatial": {0: SimpleNamespace(num_envs=2), 1: lazy_async_env(2)}}
    assert spans(shard(0, 3).shares(envs, 5), 5) == [("libero_spatial", 0, range(0, 5))]
    assert spans(shard(1, 3).shares(envs, 5), 5) == [("libero_spatial", 1, range(0, 2))]
    # The last batch of 2 envs holds one needed episode: LeRobot drops the other.
    assert spans(shard(2, 3).shares(envs, 5), 5) == [("libero_spatial", 1, range(2, 5))]


def test_tasks_stay_whole_where_an_episode_depends_on_the_ones_before():
    assert spans(shard(1, 2, split_tasks=False).shares(ENVS, 2), 2) == [
        ("libero_spatial", 2, range(0, 2)),
        ("libero_goal", 0, range(0, 2)),
        ("libero_goal", 1, range(0, 2)),
    ]
    with pytest.raises(ValueError, match="launch at most 5 processes"):
        shard(0, 6, split_tasks=False).shares(ENVS, 2)


def test_more_processes_than_batches_is_refused():
    with pytest.raises(ValueError, match="launch at most 10 processes"):
        shard(0, 11).shares(ENVS, 2)


def test_videos_of_a_later_share_are_named_by_their_episode_in_the_task(tmp_path):
    paths = []
    for n in range(3):
        paths.append(tmp_path / f"eval_episode_{n}.mp4")
        paths[-1].write_text(f"video {n}")
    renamed = renumbered_videos([str(path) for path in paths], 2)
    assert renamed == [str(tmp_path / f"eval_episode_{n}.mp4") for n in (2, 3, 4)]
    assert [Path(path).read_text() for path in renamed] == ["video 0", "video 1", "video 2"]
    assert sorted(path.name for path in tmp_path.iterdir()) == [f"eval_episode_{n}.mp4" for n in (2, 3, 4)]
    assert renumbered_videos(renamed, 0) == renamed


def task_info(suite: str, task_id: int, rewards: list[float], successes: list[bool]) -> dict:
    metrics = {"sum_rewards": rewards, "max_rewards": [min(r, 1.0) for r in rewards], "successes": successes,
               "video_paths": [f"{suite}_{task_id}.mp4"], "predicted_video_paths": []}  # fmt: skip
    return {"task_group": suite, "task_id": task_id, "metrics": metrics}


def test_merged_runs_join_split_tasks_and_pool_episodes_as_eval_policy_all_does():
    runs = [
        TaskRun(1, task_info("libero_spatial", 0, [1.0, math.nan], [True, True])),
        TaskRun(0, task_info("libero_spatial", 1, [2.0, 0.0], [True, False])),
        TaskRun(0, task_info("libero_goal", 0, [0.0, 0.0], [False, False])),
        TaskRun(0, task_info("libero_spatial", 0, [4.0], [False])),
    ]
    order = [("libero_spatial", 0), ("libero_spatial", 1), ("libero_goal", 0)]
    merged = merge_task_runs(runs, order, eval_s=14.0)
    assert [(t["task_group"], t["task_id"]) for t in merged["per_task"]] == order
    first = merged["per_task"][0]["metrics"]  # its episode 0, then its episodes 1 and 2
    assert first["sum_rewards"][:2] == [4.0, 1.0] and math.isnan(first["sum_rewards"][2])
    assert first["successes"] == [False, True, True]
    assert first["video_paths"] == ["libero_spatial_0.mp4", "libero_spatial_0.mp4"]
    spatial = merged["per_group"]["libero_spatial"]
    assert spatial["avg_sum_reward"] == pytest.approx(7.0 / 4) and spatial["pc_success"] == 60.0
    assert spatial["n_episodes"] == 5
    overall = merged["overall"]
    assert overall["avg_sum_reward"] == pytest.approx(7.0 / 6) and overall["pc_success"] == pytest.approx(
        300 / 7
    )
    assert overall["n_episodes"] == 7 and overall["eval_s"] == 14.0 and overall["eval_ep_s"] == 2.0
    assert list(overall) == ["avg_sum_reward", "avg_max_reward", "pc_success", "n_episodes", "eval_s",
                             "eval_ep_s", "video_paths", "predicted_video_paths"]  # fmt: skip
    assert runs[3].task["metrics"]["sum_rewards"] == [4.0]  # the runs themselves are left as they were
