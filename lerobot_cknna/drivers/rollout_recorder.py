"""Pairing feat A and feat B while LeRobot's ``eval_policy_all`` rolls out episodes.

:class:`SimulationRecorder` attaches to the vector envs, the policy and the env preprocessor
for the length of one evaluation (:meth:`SimulationRecorder.attached`):

* a forward hook (:mod:`lerobot_cknna.capture.hooks`) records feat A whenever ``select_action``
  ran the model (chunking policies run it on a subset of env steps), and in the same forward
  what the run's buffer sets hold (layer taps, token groups: :mod:`lerobot_cknna.drivers.buffer_sets`);
* a :class:`~lerobot_cknna.drivers.proprioception_tap.ProprioceptionTapStep` first in the env
  preprocessor records feat B, the state the env's own processing builds for that step (for
  LIBERO, the 8-D state of every policy type, even where a policy brings env processing of its
  own, as X-VLA does);
* the vector envs' ``reset`` / ``step`` are watched to know, per env, its episode, step,
  whether it was already done (LeRobot keeps stepping finished envs, frozen on their last
  transition: those steps are masked) and whether the episode succeeded (by LeRobot's own
  rule: any success up to one step after the first done, success read as ``rollout`` reads it).

Samples of finished rollouts go to disk as they complete (the buffer sets' with them, so every
set holds the same samples); a rollout cut short (a worker that
died, Ctrl-C) is dropped, since its outcome is unknown, and :meth:`SimulationRecorder.losses`
says which episodes were lost and which were never run.
"""

import contextlib
import logging
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from lerobot_cknna.capture.hooks import FeatureCapture, batch_size_of
from lerobot_cknna.drivers.buffer_sets import capture_options
from lerobot_cknna.drivers.proprioception_tap import ProprioceptionTapStep
from lerobot_cknna.results.feature_sets import BufferSet
from lerobot_cknna.results.features_io import FeatureBuffer, SavedFeatures
from lerobot_cknna.utils.patching import patched


@dataclass(frozen=True)
class EpisodeOrigin:
    """Where ``lerobot-eval`` ran an episode: its suite and task, its batch, its env in the batch."""

    suite: str
    task_id: int
    batch: int
    env_index: int
    num_envs: int


@dataclass
class _Rollout:
    """One batch of episodes on one vector env, as ``lerobot_eval.rollout`` runs it."""

    suite: str
    task_id: int
    first_episode: int
    num_envs: int
    max_steps: int
    step: int = 0
    done: np.ndarray = None
    done_history: list[np.ndarray] = field(default_factory=list)
    success_history: list[np.ndarray] = field(default_factory=list)
    # Per model call: env step, feat A, state, tasks, which envs were still running, and what the
    # capture returned for the buffer sets (None without them).
    samples: list[tuple[int, torch.Tensor, torch.Tensor, list[str], np.ndarray, dict | None]] = field(
        default_factory=list
    )

    def __post_init__(self):
        self.done = np.zeros(self.num_envs, dtype=bool)

    def observe_step(self, terminated: np.ndarray, truncated: np.ndarray, info: dict) -> None:
        successes = step_successes(info, self.num_envs)
        self.done = terminated | truncated | self.done
        if self.step + 1 == self.max_steps:
            self.done = np.ones_like(self.done)
        self.done_history.append(self.done.copy())
        self.success_history.append(successes)
        self.step += 1

    @property
    def complete(self) -> bool:
        """Whether every env of the batch is done: its episodes' outcome is known."""
        return bool(self.done_history) and bool(self.done.all())

    def episode_success(self) -> np.ndarray:
        """LeRobot's rule (``eval_policy``): any success at or before one step after the first done."""
        dones, successes = np.stack(self.done_history, axis=1), np.stack(self.success_history, axis=1)
        done_index = dones.argmax(axis=1)
        counted = np.arange(dones.shape[1])[None, :] <= done_index[:, None] + 1
        return (successes & counted).any(axis=1)


@dataclass
class GatheredSimulation:
    """What a simulation gathered, ready to score: its features, and what its record says of them.

    Attributes:
        features: every kept sample.
        n_episodes: ``--eval.n_episodes`` (per task).
        task_suites: task string -> suite.
        model_calls: env steps at which the model ran.
        info: ``eval_policy_all``'s metrics (``eval_info.json``).
    """

    features: SavedFeatures
    n_episodes: int
    task_suites: dict[str, str]
    model_calls: int
    info: dict


def step_successes(info: dict, num_envs: int) -> np.ndarray:
    """Which envs report success after a vector step, read as ``lerobot_eval.rollout`` reads it.

    ``final_info`` when an env finished (a dict of arrays, or gymnasium < 1's per-env list),
    else the per-step ``is_success`` (LIBERO in lerobot 0.6 sends no ``final_info``), else none.
    """
    if "final_info" in info:
        final_info = info["final_info"]
        if isinstance(final_info, dict):
            return np.broadcast_to(
                np.asarray(final_info.get("is_success", False), dtype=bool), num_envs
            ).copy()
        return np.array([isinstance(item, dict) and bool(item.get("is_success")) for item in final_info])
    if "is_success" in info:
        return np.broadcast_to(np.asarray(info["is_success"], dtype=bool), num_envs).copy()
    return np.zeros(num_envs, dtype=bool)


class SimulationRecorder:
    """Pairs feat A and feat B for every env step that ran the model, during ``eval_policy_all``.

    Args:
        buffer: where samples go.
        n_episodes: ``--eval.n_episodes``; LeRobot discards the extra episodes of a last,
            partly needed batch, and so does the recorder.
        hook_path: module to capture instead of the hook table's.
        env_state_steps: the env's own preprocessing steps, which build feat B; ``None``: those
            of the env preprocessor the evaluation runs.
        episode_ranges: per ``(suite, task_id)``, the episodes of that task this recorder sees,
            numbered as one process running all of them would; ``None``: every task's
            ``range(n_episodes)``. A process of a sharded simulation may run a later part of a
            task (:mod:`lerobot_cknna.drivers.simulation_sharding`).
        buffer_sets: where the layer taps or token groups of the same forwards go.
    """

    def __init__(
        self,
        buffer: FeatureBuffer,
        n_episodes: int,
        hook_path: str | None = None,
        env_state_steps: list | None = None,
        episode_ranges: dict[tuple[str, int], range] | None = None,
        buffer_sets: Sequence[BufferSet] = (),
    ):
        self.buffer = buffer
        self.buffer_sets = list(buffer_sets)
        self.episode_ranges = episode_ranges or {}
        self.env_state_steps = env_state_steps
        self.n_episodes = n_episodes
        self.hook_path = hook_path
        self.task_suites: dict[str, str] = {}
        self.model_calls = 0
        self._rollout: _Rollout | None = None
        self._rollouts_per_env: dict[int, int] = {}
        self._next_episode = 0
        self._progress: tqdm | None = None
        self._episodes_kept: dict[tuple[str, int], int] = {}
        self._stopped_during: _Rollout | None = None
        self.episode_origins: dict[int, EpisodeOrigin] = {}

    def _start_rollout(self, suite: str, task_id: int, env) -> None:
        self._finish_rollout()
        if self._progress is not None:
            self._progress.set_description(f"{suite} task {task_id}")
        first_batch = self.episodes_of(suite, task_id).start // env.num_envs
        batch_ix = self._rollouts_per_env.get(id(env), first_batch)
        self._rollouts_per_env[id(env)] = batch_ix + 1
        self._rollout = _Rollout(
            suite, task_id, batch_ix * env.num_envs, env.num_envs, env.call("_max_episode_steps")[0]
        )

    def episodes_of(self, suite: str, task_id: int) -> range:
        """The episodes of a task that this recorder sees."""
        return self.episode_ranges.get((suite, task_id), range(self.n_episodes))

    def _finish_rollout(self) -> None:
        rollout, self._rollout = self._rollout, None
        if rollout is None or not rollout.samples:
            return
        success = rollout.episode_success()
        last = self.episodes_of(rollout.suite, rollout.task_id).stop
        kept = [i for i in range(rollout.num_envs) if rollout.first_episode + i < last]
        episode_of = {i: self._next_episode + rank for rank, i in enumerate(kept)}
        self._next_episode += len(kept)
        batch = rollout.first_episode // rollout.num_envs
        for i, episode in episode_of.items():
            self.episode_origins[episode] = EpisodeOrigin(
                rollout.suite, rollout.task_id, batch, i, rollout.num_envs
            )
        task = (rollout.suite, rollout.task_id)
        self._episodes_kept[task] = self._episodes_kept.get(task, 0) + len(kept)
        if self._progress is not None:
            self._progress.update(len(kept))
        for step, feat_a, feat_b, tasks, active, captured in rollout.samples:
            rows = [i for i in kept if active[i]]
            if not rows:
                continue
            where = (
                feat_b[rows],
                torch.tensor([episode_of[i] for i in rows]),
                torch.full((len(rows),), step),
            )
            row_tasks = [tasks[i] for i in rows]
            self.buffer.add(feat_a[rows], *where, tasks=row_tasks, success=torch.from_numpy(success[rows]))
            for extra in self.buffer_sets:
                extra.add({key: value[rows] for key, value in captured.items()}, *where, tasks=row_tasks)
            self.task_suites.update(dict.fromkeys(row_tasks, rollout.suite))
        self._flush()

    def _flush(self) -> None:
        self.buffer.flush()
        for extra in self.buffer_sets:
            extra.flush()

    def close(self) -> None:
        """Write the run's ``features.safetensors`` and every buffer set's."""
        self.buffer.close()
        for extra in self.buffer_sets:
            extra.close()

    @contextmanager
    def attached(self, envs: dict, policy, env_preprocessor):
        """Watch ``envs``, hook ``policy`` and tap ``env_preprocessor`` while the block runs."""
        own_steps = self.env_state_steps
        tap = ProprioceptionTapStep(
            state_steps=list(env_preprocessor.steps if own_steps is None else own_steps)
        )
        capture = FeatureCapture(policy, self.hook_path, **capture_options(self.buffer_sets))
        select_action = policy.select_action

        def recording_select_action(batch, *args, **kwargs):
            action = select_action(batch, *args, **kwargs)
            captured = capture.pop_all(batch_size_of(batch))
            if captured is not None:
                self.model_calls += 1
                state, tasks = tap.latest
                rollout = self._rollout
                extra = captured if self.buffer_sets else None
                feat_a = captured[capture.spec.module_path]
                rollout.samples.append((rollout.step, feat_a, state, tasks, ~rollout.done, extra))
            return action

        def watched(suite: str, task_id: int, env) -> contextlib.ExitStack:
            reset, step = env.reset, env.step

            def recording_reset(*args, **kwargs):
                self._start_rollout(suite, task_id, env)
                return reset(*args, **kwargs)

            def recording_step(action):
                observation, reward, terminated, truncated, info = step(action)
                self._rollout.observe_step(terminated, truncated, info)
                return observation, reward, terminated, truncated, info

            stack = contextlib.ExitStack()
            stack.enter_context(patched(env, "reset", recording_reset))
            stack.enter_context(patched(env, "step", recording_step))
            return stack

        with contextlib.ExitStack() as stack:
            stack.enter_context(patched(env_preprocessor, "steps", [tap, *env_preprocessor.steps]))
            stack.enter_context(patched(policy, "select_action", recording_select_action))
            for suite, group in envs.items():
                for task_id, env in group.items():
                    stack.enter_context(watched(suite, task_id, env))
                    self._episodes_kept[(suite, task_id)] = 0
            self._progress = stack.enter_context(
                tqdm(total=self._episodes_planned(), desc="episodes", unit="episode")
            )
            stack.enter_context(capture)
            try:
                yield self
                self._finish_rollout()
            finally:
                if self._rollout is not None and self._rollout.complete:
                    self._finish_rollout()
                if self._rollout is not None and self._rollout.samples:
                    logging.warning(
                        f"Dropped {len(self._rollout.samples)} model calls of a rollout that did not finish."
                    )
                self._stopped_during = self._rollout
                self._rollout = None
                self._progress = None
                self._flush()

    def gathered(self, info: dict) -> GatheredSimulation:
        """What this recorder gathered during an evaluation that returned ``info``."""
        return GatheredSimulation(
            self.buffer.features(), self.n_episodes, dict(self.task_suites), self.model_calls, info
        )

    def _episodes_planned(self) -> int:
        return sum(len(self.episodes_of(*task)) for task in self._episodes_kept)

    def losses(self) -> dict:
        """After an evaluation that stopped early: the episodes kept, and per task those that were lost.

        Returns:
            ``episodes_kept``, ``episodes_planned``, ``stopped_during`` (the suite, task and
            episodes of the rollout that was cut short, ``None`` when none was running) and
            ``tasks``: per task, its episodes kept and lost (cut short or never run).
        """
        stopped = self._stopped_during
        last_episode = (
            None
            if stopped is None
            else min(
                stopped.first_episode + stopped.num_envs,
                self.episodes_of(stopped.suite, stopped.task_id).stop,
            )
        )
        return {
            "episodes_kept": self._next_episode,
            "episodes_planned": self._episodes_planned(),
            "stopped_during": None
            if stopped is None
            else {
                "suite": stopped.suite,
                "task_id": stopped.task_id,
                "episodes": [stopped.first_episode, last_episode - 1],
            },
            "tasks": [
                {
                    "suite": suite,
                    "task_id": task_id,
                    "episodes_kept": kept,
                    "episodes_lost": len(self.episodes_of(suite, task_id)) - kept,
                }
                for (suite, task_id), kept in self._episodes_kept.items()
            ],
        }
