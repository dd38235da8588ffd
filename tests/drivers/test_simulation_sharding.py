import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from lerobot_cknna.drivers.simulation_sharding import SimulationShard, merge_eval_infos, task_order

ENVS = {"libero_spatial": {0: "s0", 1: "s1", 2: "s2"}, "libero_goal": {0: "g0", 1: "g1"}}


def shard(rank: int, processes: int) -> SimulationShard:
    return SimulationShard(SimpleNamespace(process_index=rank, num_processes=processes), Path("run"))


def test_each_process_takes_every_nth_task_in_lerobot_evals_order():
    assert task_order(ENVS) == [("libero_spatial", 0), ("libero_spatial", 1), ("libero_spatial", 2),
                                ("libero_goal", 0), ("libero_goal", 1)]  # fmt: skip
    assert shard(0, 2).tasks(ENVS) == {"libero_spatial": {0: "s0", 2: "s2"}, "libero_goal": {1: "g1"}}
    assert shard(1, 2).tasks(ENVS) == {"libero_spatial": {1: "s1"}, "libero_goal": {0: "g0"}}
    assert shard(1, 2).directory == Path("run/shards/rank-1")


def test_more_processes_than_tasks_is_refused():
    with pytest.raises(ValueError, match="launch at most as many processes as tasks"):
        shard(0, 6).tasks(ENVS)


def task_info(suite: str, task_id: int, rewards: list[float], successes: list[bool]) -> dict:
    metrics = {"sum_rewards": rewards, "max_rewards": [min(r, 1.0) for r in rewards], "successes": successes,
               "video_paths": [f"{suite}_{task_id}.mp4"], "predicted_video_paths": []}  # fmt: skip
    return {"task_group": suite, "task_id": task_id, "metrics": metrics}


def test_merged_metrics_pool_episodes_as_eval_policy_all_does():
    first = {
        "per_task": [task_info("libero_spatial", 1, [2.0, 0.0], [True, False])],
        "overall": {"eval_s": 9.0},
    }
    second = {
        "per_task": [task_info("libero_spatial", 0, [1.0, math.nan], [True, True]),
                     task_info("libero_goal", 0, [0.0, 0.0], [False, False])],
        "overall": {"eval_s": 12.0},
    }  # fmt: skip
    order = [("libero_spatial", 0), ("libero_spatial", 1), ("libero_goal", 0)]
    merged = merge_eval_infos([first, second], order)
    assert [(t["task_group"], t["task_id"]) for t in merged["per_task"]] == order
    spatial = merged["per_group"]["libero_spatial"]
    assert spatial["avg_sum_reward"] == pytest.approx(1.0) and spatial["pc_success"] == 75.0
    assert spatial["n_episodes"] == 4 and spatial["video_paths"] == [
        "libero_spatial_0.mp4",
        "libero_spatial_1.mp4",
    ]
    overall = merged["overall"]
    assert overall["avg_sum_reward"] == pytest.approx(3.0 / 5) and overall["pc_success"] == 50.0
    assert overall["n_episodes"] == 6 and overall["eval_s"] == 12.0 and overall["eval_ep_s"] == 2.0
    assert list(overall) == ["avg_sum_reward", "avg_max_reward", "pc_success", "n_episodes", "eval_s",
                             "eval_ep_s", "video_paths", "predicted_video_paths"]  # fmt: skip
