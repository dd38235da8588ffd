"""Simulation sharded over processes with Hugging Face ``accelerate``.

``accelerate launch --num_processes N -m lerobot_cknna --env.type=libero ...`` starts N copies of
the command. Each makes the same envs (LeRobot's LIBERO envs are lazy: a task's workers start
when its turn comes) and evaluates every N-th task of them, in ``lerobot-eval``'s order and with
its seeds (every task starts at ``--seed``), streaming its features to ``shards/rank-R/``. The
main process gathers every process's features and metrics, puts them in the order one process
would have produced them, and writes one ``eval_info.json`` (LeRobot's aggregate format) and
one ``cknna.json``. The other processes keep their own ``eval_info.json`` (and videos) in
``shards/rank-R/``.

A policy that samples (diffusion, flow matching) draws from the global torch generator, which
one process carries from task to task: a sharded run draws other noise, as any other task
order would. Deterministic policies give the features and numbers of one process.
"""

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from accelerate.utils import gather_object

from lerobot_cknna.drivers.rollout_recorder import GatheredSimulation, SimulationRecorder
from lerobot_cknna.drivers.sharding import SHARDS_DIR
from lerobot_cknna.results.features_io import FeatureBuffer


@dataclass
class SimulationShard:
    """One process's share of a sharded simulation.

    Args:
        state: accelerate's process state.
        run_dir: the run's output directory (the main process's).
    """

    state: PartialState
    run_dir: Path

    @property
    def directory(self) -> Path:
        """Where this process streams its features (and, off the main process, writes lerobot-eval's output)."""
        return Path(self.run_dir) / SHARDS_DIR / f"rank-{self.state.process_index}"

    def tasks(self, envs: dict) -> dict:
        """This process's share of ``eval_policy_all``'s ``envs``: every N-th task, in their order.

        Raises:
            ValueError: fewer tasks than processes.
        """
        tasks = task_order(envs)
        if len(tasks) < self.state.num_processes:
            raise ValueError(
                f"accelerate launched {self.state.num_processes} processes for {len(tasks)} simulated task(s); "
                "a simulation is sharded by task: launch at most as many processes as tasks."
            )
        mine = set(tasks[self.state.process_index :: self.state.num_processes])
        share = {
            suite: {i: env for i, env in group.items() if (suite, i) in mine} for suite, group in envs.items()
        }
        return {suite: group for suite, group in share.items() if group}


def task_order(envs: dict) -> list[tuple[str, int]]:
    """The ``(suite, task_id)`` of ``eval_policy_all``'s ``envs``, in the order it evaluates them."""
    return [(suite, task_id) for suite, group in envs.items() for task_id in group]


def gather_simulation(
    recorder: SimulationRecorder, info: dict, order: list[tuple[str, int]], buffer: FeatureBuffer | None
) -> GatheredSimulation | None:
    """Collect every process's samples into ``buffer`` on the main process, as one process orders them.

    Every process must call this; only the main one (the one with a ``buffer``) gets the result.
    Episodes are renumbered in task order; rows follow one process's order: task, batch, env step,
    env of the batch.
    """
    features = recorder.buffer.features() if len(recorder.buffer) else None
    shares = gather_object(
        [(features, recorder.episode_origins, recorder.task_suites, recorder.model_calls, info)]
    )
    if buffer is None:
        return None
    kept = [(share[0], share[1]) for share in shares if share[0] is not None]
    if not kept:
        raise ValueError("No samples were gathered by any process.")
    position = {task: i for i, task in enumerate(order)}
    keys = []  # one process's order of rows: task, batch, env step, env of the batch
    for features, origins in kept:
        for episode, frame in zip(
            features.episode_index.tolist(), features.frame_index.tolist(), strict=True
        ):
            origin = origins[episode]
            keys.append((position[(origin.suite, origin.task_id)], origin.batch, frame, origin.env_index))
    episodes = sorted({(task, batch, env) for task, batch, _, env in keys})
    episode_of = {episode: i for i, episode in enumerate(episodes)}
    ordered = sorted(range(len(keys)), key=keys.__getitem__)
    tasks = [features.tasks[i] for features, _ in kept for i in features.task_index.tolist()]

    def joined(name: str) -> torch.Tensor:
        return torch.cat([getattr(features, name) for features, _ in kept])[ordered]

    buffer.add(
        joined("feat_a"),
        joined("feat_b"),
        episode_index=torch.tensor([episode_of[keys[i][0], keys[i][1], keys[i][3]] for i in ordered]),
        frame_index=joined("frame_index"),
        tasks=[tasks[i] for i in ordered],
        success=joined("success"),
    )
    buffer.close()
    return GatheredSimulation(
        buffer.features(),
        recorder.n_episodes,
        {task: suite for share in shares for task, suite in share[2].items()},
        sum(share[3] for share in shares),
        merge_eval_infos([share[4] for share in shares], order),
    )


def merge_eval_infos(infos: list[dict], order: list[tuple[str, int]]) -> dict:
    """One ``eval_info.json`` of the shards' ones, as ``eval_policy_all`` aggregates a single process's tasks.

    Episode metrics are pooled per suite and overall (mean reward, success rate); ``eval_s`` is
    the slowest process's, since they ran at the same time.
    """
    position = {task: i for i, task in enumerate(order)}
    per_task = sorted(
        (task for info in infos for task in info["per_task"]),
        key=lambda task: position[(task["task_group"], task["task_id"])],
    )
    per_group = {}
    for task in per_task:
        per_group.setdefault(task["task_group"], []).append(task["metrics"])
    eval_s = max(info["overall"]["eval_s"] for info in infos)
    overall = _pooled([task["metrics"] for task in per_task], eval_s)
    return {
        "per_task": per_task,
        "per_group": {group: _pooled(metrics) for group, metrics in per_group.items()},
        "overall": overall,
    }


def _pooled(metrics: list[dict], eval_s: float | None = None) -> dict:
    """``eval_policy_all``'s aggregate of some tasks' episode metrics (with the time, for the overall one)."""

    def pooled(key: str) -> list:
        return [value for task in metrics for value in task.get(key) or []]

    def mean(values: list) -> float:
        return float(np.nanmean(np.array(values, dtype=float))) if values else math.nan

    successes, n_episodes = pooled("successes"), len(pooled("sum_rewards"))
    aggregate = {
        "avg_sum_reward": mean(pooled("sum_rewards")),
        "avg_max_reward": mean(pooled("max_rewards")),
        "pc_success": mean(successes) * 100 if successes else math.nan,
        "n_episodes": n_episodes,
    }
    if eval_s is not None:
        aggregate.update(eval_s=eval_s, eval_ep_s=eval_s / max(1, n_episodes))
    return {
        **aggregate,
        "video_paths": pooled("video_paths"),
        "predicted_video_paths": pooled("predicted_video_paths"),
    }


def remove_shard_features(shard: SimulationShard) -> None:
    """Drop this process's streamed features once the main process holds them (its other output stays)."""
    shutil.rmtree(shard.directory / "features", ignore_errors=True)
