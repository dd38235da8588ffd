"""Simulation sharded over processes with Hugging Face ``accelerate``.

``accelerate launch --num_processes N -m lerobot_cknna --env.type=libero ...`` starts N copies of
the command. Each makes the same envs (LeRobot's LIBERO envs are lazy: a task's workers start
when its turn comes) and evaluates a contiguous share of the work, in ``lerobot-eval``'s order:
the tasks' batches of episodes, split into N runs of equal length, so one task's episodes can be
spread over processes and a few long tasks still use every process. A process that starts a
task at episode ``e`` runs it as one process would have reached it: seeds from ``--seed + e``,
and LIBERO's initial states from the ``e``-th (:func:`start_at_episode`). Each process streams
its features to ``shards/rank-R/``. The main process gathers every process's features and
metrics, puts them in the order one process would have produced them, and writes one
``eval_info.json`` (LeRobot's aggregate format) and one ``cknna.json``. The other processes keep
their own ``eval_info.json`` (and videos, named by their episode in the task) in
``shards/rank-R/``.

A task is split only where an episode does not depend on the ones before it. LIBERO with
``--env.hard_reset=false`` keeps the MuJoCo scene from episode to episode, and a scene that ran
an episode steps differently from a new one set to the same state (measured: camera images up to
89 of 255 apart after five steps), so such tasks stay whole, as do other env types. Which
initial state a LIBERO episode starts from is counted by its sub-env's resets: in a batch of
async envs LeRobot freezes a sub-env that finished early, and a batch of one env never has one,
so each batch resets each sub-env once; a batch of several sync envs resets a sub-env that
finished early (Gymnasium's autoreset), so where a later batch starts depends on the earlier
ones, and such a task stays whole too.

A policy that samples (diffusion, flow matching) draws from the global torch generator, which
one process carries from episode to episode: a sharded run draws other noise, as any other
order would. Deterministic policies give the features and numbers of one process.
"""

import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import PartialState
from accelerate.utils import gather_object
from lerobot.envs.utils import _LazyAsyncVectorEnv

from lerobot_cknna.drivers.rollout_recorder import GatheredSimulation, SimulationRecorder
from lerobot_cknna.drivers.sharding import SHARDS_DIR
from lerobot_cknna.results.features_io import FeatureBuffer


@dataclass(frozen=True)
class TaskShare:
    """Consecutive batches of one task's episodes, evaluated by one process.

    Attributes:
        suite: the task's suite.
        task_id: the task's id in its suite.
        env: the task's vector env (its ``num_envs`` is the batch size).
        first_batch: the first batch of the share, counted from the task's first.
        n_batches: how many batches.
    """

    suite: str
    task_id: int
    env: Any
    first_batch: int
    n_batches: int

    def episodes(self, n_episodes: int) -> range:
        """The share's episodes of the task, of ``n_episodes`` (LeRobot drops a last batch's extra ones)."""
        size = self.env.num_envs
        return range(self.first_batch * size, min(n_episodes, (self.first_batch + self.n_batches) * size))


@dataclass(frozen=True)
class TaskRun:
    """What evaluating one :class:`TaskShare` returned: its first episode and ``eval_policy_all``'s task entry."""

    first_episode: int
    task: dict


@dataclass
class SimulationShard:
    """One process's share of a sharded simulation.

    Args:
        state: accelerate's process state.
        run_dir: the run's output directory (the main process's).
        split_tasks: whether a task's episodes may be spread over processes, which needs episodes
            that do not depend on the ones before them (LIBERO with a hard reset).
    """

    state: PartialState
    run_dir: Path
    split_tasks: bool = False

    @property
    def directory(self) -> Path:
        """Where this process streams its features (and, off the main process, writes lerobot-eval's output)."""
        return Path(self.run_dir) / SHARDS_DIR / f"rank-{self.state.process_index}"

    def shares(self, envs: dict, n_episodes: int) -> list[TaskShare]:
        """This process's run of ``eval_policy_all``'s ``envs``, as task shares in evaluation order.

        Raises:
            ValueError: fewer pieces of work (batches, or tasks kept whole) than processes.
        """
        pieces = []
        for suite, task_id in task_order(envs):
            env = envs[suite][task_id]
            n_batches = math.ceil(n_episodes / env.num_envs)
            if self.split_tasks and splits_at_batches(env):
                pieces += [TaskShare(suite, task_id, env, batch, 1) for batch in range(n_batches)]
            else:
                pieces.append(TaskShare(suite, task_id, env, 0, n_batches))
        processes, rank = self.state.num_processes, self.state.process_index
        if len(pieces) < processes:
            raise ValueError(
                f"accelerate launched {processes} processes for {len(pieces)} piece(s) of simulation work "
                "(a batch of episodes of a task, or a task kept whole): "
                f"launch at most {len(pieces)} processes, or evaluate more episodes or tasks."
            )
        shares: list[TaskShare] = []
        for piece in pieces[rank * len(pieces) // processes : (rank + 1) * len(pieces) // processes]:
            previous = shares[-1] if shares else None
            if previous is not None and (previous.suite, previous.task_id) == (piece.suite, piece.task_id):
                shares[-1] = TaskShare(
                    piece.suite, piece.task_id, piece.env, previous.first_batch, previous.n_batches + 1
                )
            else:
                shares.append(piece)
        return shares


def splits_at_batches(env) -> bool:
    """Whether each batch of ``env`` resets each sub-env exactly once, so a task may start at any batch."""
    return env.num_envs == 1 or isinstance(env, _LazyAsyncVectorEnv)


def start_at_episode(env, first_episode: int) -> None:
    """Make ``env``'s next batch start at episode ``first_episode`` of its task, as in one process.

    A LIBERO sub-env takes its initial state from a counter (``init_state_id``) that starts at
    its index in the batch and moves on by the batch size at every reset; nothing else of an
    episode depends on the earlier ones but the seed, which the caller passes. Envs without the
    counter are placed by their seeds alone.
    """
    if first_episode == 0:
        return
    vector_env = env
    if isinstance(env, _LazyAsyncVectorEnv):
        env._ensure()
        vector_env = env._env
    try:
        vector_env.get_attr("init_state_id")
    except AttributeError:
        return
    vector_env.set_attr("init_state_id", [first_episode + i for i in range(env.num_envs)])


def evaluate_shares(
    evaluate: Callable[..., dict], shares: list[TaskShare], n_episodes: int, order: list, **kwargs
) -> tuple[dict, list[TaskRun]]:
    """Run ``evaluate`` (LeRobot's ``eval_policy_all``, its other arguments bound) on each share.

    Each share is evaluated as one process would have reached it: its episodes seeded from
    ``start_seed`` plus its first episode, at most the videos one process would have rendered
    of them, named by their episode in the task.

    Returns:
        This process's ``eval_info.json`` (its time is the sum of its shares'), and each share's run.
    """
    runs, started = [], time.perf_counter()
    seed, rendered = kwargs.pop("start_seed", None), kwargs.pop("max_episodes_rendered", 0)
    for share in shares:
        episodes = share.episodes(n_episodes)
        start_at_episode(share.env, episodes.start)
        info = evaluate(
            {share.suite: {share.task_id: share.env}},
            n_episodes=len(episodes),
            start_seed=None if seed is None else seed + episodes.start,
            max_episodes_rendered=max(0, rendered - episodes.start),
            **kwargs,
        )
        (task,) = info["per_task"]
        task["metrics"]["video_paths"] = renumbered_videos(
            task["metrics"].get("video_paths", []), episodes.start
        )
        runs.append(TaskRun(episodes.start, task))
    return merge_task_runs(runs, order, time.perf_counter() - started), runs


def renumbered_videos(paths: list[str], first_episode: int) -> list[str]:
    """Rename ``eval_episode_N.mp4`` of a share starting at ``first_episode`` to its episode in the task."""
    if first_episode == 0:
        return paths
    renamed = []
    for path in map(Path, reversed(paths)):  # the last first: a new name may be an old one's
        episode = int(path.stem.rsplit("_", 1)[1]) + first_episode
        renamed.append(str(path.rename(path.with_name(f"eval_episode_{episode}{path.suffix}"))))
    return renamed[::-1]


def task_order(envs: dict) -> list[tuple[str, int]]:
    """The ``(suite, task_id)`` of ``eval_policy_all``'s ``envs``, in the order it evaluates them."""
    return [(suite, task_id) for suite, group in envs.items() for task_id in group]


def gather_simulation(
    recorder: SimulationRecorder,
    runs: list[TaskRun],
    info: dict,
    order: list[tuple[str, int]],
    buffer: FeatureBuffer | None,
) -> GatheredSimulation | None:
    """Collect every process's samples into ``buffer`` on the main process, as one process orders them.

    Every process must call this; only the main one (the one with a ``buffer``) gets the result.
    Episodes are renumbered in task order; rows follow one process's order: task, batch, env step,
    env of the batch. ``runs`` and ``info`` are this process's (:func:`evaluate_shares`).
    """
    features = recorder.buffer.features() if len(recorder.buffer) else None
    shares = gather_object(
        [(features, recorder.episode_origins, recorder.task_suites, recorder.model_calls, runs, info)]
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
        # The processes ran at the same time: the run took the slowest one's time.
        merge_task_runs(
            [run for share in shares for run in share[4]],
            order,
            max(share[5]["overall"]["eval_s"] for share in shares),
        ),
    )


def merge_task_runs(runs: list[TaskRun], order: list[tuple[str, int]], eval_s: float) -> dict:
    """One ``eval_info.json`` of task shares' runs, as ``eval_policy_all`` aggregates one process's tasks.

    A task's runs are joined in episode order into one ``per_task`` entry; episode metrics are
    pooled per suite and overall (mean reward, success rate). ``eval_s`` is the run's time.
    """
    position = {task: i for i, task in enumerate(order)}
    per_task: dict[tuple[str, int], dict] = {}
    for run in sorted(
        runs, key=lambda run: (position[run.task["task_group"], run.task["task_id"]], run.first_episode)
    ):
        key = (run.task["task_group"], run.task["task_id"])
        if key in per_task:
            joined = per_task[key]["metrics"]
            for name, values in run.task["metrics"].items():
                joined[name] = [*joined.get(name, []), *values]
        else:
            per_task[key] = {**run.task, "metrics": dict(run.task["metrics"])}
    per_task = list(per_task.values())
    per_group = {}
    for task in per_task:
        per_group.setdefault(task["task_group"], []).append(task["metrics"])
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
