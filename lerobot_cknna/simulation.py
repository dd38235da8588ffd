"""Simulation mode: gather paired features inside LeRobot's own evaluation loop.

Nothing of ``lerobot-eval``'s rollout is copied. :func:`instrument_eval_policy_all` wraps
``lerobot.scripts.lerobot_eval.eval_policy_all`` so that, while it runs:

* a forward hook (:mod:`lerobot_cknna.capture`) records feat A whenever ``select_action``
  ran the model (chunking policies run it on a subset of env steps);
* a :class:`~lerobot_cknna.proprioception_tap.ProprioceptionTapStep` appended to the env
  preprocessor records feat B, the state LeRobot's LIBERO processing built for that step;
* the vector envs' ``reset`` / ``step`` are watched to know, per env, its episode, step,
  whether it was already done (LeRobot keeps stepping finished envs, frozen on their last
  transition: those steps are masked) and whether the episode succeeded (by LeRobot's own
  rule: any success up to one step after the first done, success read as ``rollout`` reads it).

Sync and async vector envs work alike: the policy, its processors and the env processors run
in this process; only the simulators run in the async workers.

Samples of finished rollouts go to disk as they complete; a rollout cut short by an error
is dropped, since its outcome is unknown.
"""

import contextlib
import functools
import logging
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lerobot_cknna.capture import FeatureCapture, batch_size_of
from lerobot_cknna.configs.pipeline import PARALLEL_TASKS_REFUSED, CKNNARunConfig
from lerobot_cknna.features_io import FeatureBuffer
from lerobot_cknna.fixes import apply_policy_fixes, eval_fixes, make_pre_post_processors
from lerobot_cknna.hook_table import spec_for
from lerobot_cknna.patching import patched
from lerobot_cknna.proprioception_tap import ProprioceptionTapStep
from lerobot_cknna.provenance import run_source, weights_provenance
from lerobot_cknna.results import publish


@dataclass
class _Rollout:
    """One batch of episodes on one vector env, as ``lerobot_eval.rollout`` runs it."""

    suite: str
    first_episode: int
    num_envs: int
    max_steps: int
    step: int = 0
    done: np.ndarray = None
    done_history: list[np.ndarray] = field(default_factory=list)
    success_history: list[np.ndarray] = field(default_factory=list)
    samples: list[tuple[int, torch.Tensor, torch.Tensor, list[str], np.ndarray]] = field(default_factory=list)

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

    def episode_success(self) -> np.ndarray:
        """LeRobot's rule (``eval_policy``): any success at or before one step after the first done."""
        dones, successes = np.stack(self.done_history, axis=1), np.stack(self.success_history, axis=1)
        done_index = dones.argmax(axis=1)
        counted = np.arange(dones.shape[1])[None, :] <= done_index[:, None] + 1
        return (successes & counted).any(axis=1)


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
    """

    def __init__(self, buffer: FeatureBuffer, n_episodes: int, hook_path: str | None = None):
        self.buffer = buffer
        self.n_episodes = n_episodes
        self.hook_path = hook_path
        self.task_suites: dict[str, str] = {}
        self.model_calls = 0
        self._rollout: _Rollout | None = None
        self._rollouts_per_env: dict[int, int] = {}
        self._next_episode = 0

    def _start_rollout(self, suite: str, env) -> None:
        self._finish_rollout()
        batch_ix = self._rollouts_per_env.get(id(env), 0)
        self._rollouts_per_env[id(env)] = batch_ix + 1
        self._rollout = _Rollout(
            suite, batch_ix * env.num_envs, env.num_envs, env.call("_max_episode_steps")[0]
        )

    def _finish_rollout(self) -> None:
        rollout, self._rollout = self._rollout, None
        if rollout is None or not rollout.samples:
            return
        success = rollout.episode_success()
        kept = [i for i in range(rollout.num_envs) if rollout.first_episode + i < self.n_episodes]
        episode_of = {i: self._next_episode + rank for rank, i in enumerate(kept)}
        self._next_episode += len(kept)
        for step, feat_a, feat_b, tasks, active in rollout.samples:
            rows = [i for i in kept if active[i]]
            if not rows:
                continue
            self.buffer.add(
                feat_a[rows],
                feat_b[rows],
                episode_index=torch.tensor([episode_of[i] for i in rows]),
                frame_index=torch.full((len(rows),), step),
                tasks=[tasks[i] for i in rows],
                success=torch.from_numpy(success[rows]),
            )
            self.task_suites.update({tasks[i]: rollout.suite for i in rows})
        self.buffer.flush()

    @contextmanager
    def attached(self, envs: dict, policy, env_preprocessor):
        """Watch ``envs``, hook ``policy`` and tap ``env_preprocessor`` while the block runs."""
        tap = ProprioceptionTapStep()
        capture = FeatureCapture(policy, self.hook_path)
        select_action = policy.select_action

        def recording_select_action(batch, *args, **kwargs):
            action = select_action(batch, *args, **kwargs)
            feat_a = capture.pop(batch_size_of(batch))
            if feat_a is not None:
                self.model_calls += 1
                state, tasks = tap.latest
                rollout = self._rollout
                rollout.samples.append((rollout.step, feat_a, state, tasks, ~rollout.done))
            return action

        def watched(suite: str, env) -> contextlib.ExitStack:
            reset, step = env.reset, env.step

            def recording_reset(*args, **kwargs):
                self._start_rollout(suite, env)
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
            stack.enter_context(patched(env_preprocessor, "steps", [*env_preprocessor.steps, tap]))
            stack.enter_context(patched(policy, "select_action", recording_select_action))
            for suite, group in envs.items():
                for env in group.values():
                    stack.enter_context(watched(suite, env))
            stack.enter_context(capture)
            try:
                yield self
                self._finish_rollout()
            finally:
                if self._rollout is not None and self._rollout.samples:
                    logging.warning(
                        f"Dropped {len(self._rollout.samples)} model calls of a rollout that did not finish."
                    )
                self._rollout = None
                self.buffer.flush()


def publish_simulation(
    run_dir: Path, recorder: "SimulationRecorder", policy, info: dict, cfg: CKNNARunConfig
) -> dict:
    """Score what ``recorder`` gathered during ``eval_policy_all`` and write the run's results."""
    suites = sorted(set(recorder.task_suites.values()))
    environment = suites[0].split("_")[0] if suites else "simulation"
    source = run_source(
        policy,
        spec_for(policy.config.type, cfg.hook_path, policy.config),
        weights_provenance(policy.config.pretrained_path, cfg.weights, target=environment),
        mode="simulation",
        data={
            "suites": suites,
            "n_episodes": recorder.n_episodes,
            "model_calls": recorder.model_calls,
            "pc_success": info.get("overall", {}).get("pc_success"),
        },
    )
    features = recorder.buffer.features()
    return publish(run_dir, features, cfg, source, task_suites=recorder.task_suites, report=cfg.report)


class ScoringErrors(list):
    """The errors that kept a finished simulation's features from being scored (the features are kept)."""


def instrument_eval_policy_all(original: Callable, cfg: CKNNARunConfig, errors: ScoringErrors) -> Callable:
    """LeRobot's ``eval_policy_all``, recording features and scoring them into the run's output dir.

    The output dir is the parent of the ``videos_dir`` (or, with ``--eval.recording=true``,
    ``recording_dir``) that ``eval_main`` passes, so results land beside ``eval_info.json``.

    Args:
        original: LeRobot's ``eval_policy_all``.
        cfg: the ``--cknna.*`` options.
        errors: where a scoring error goes (lerobot-eval still writes ``eval_info.json``).
    """

    @functools.wraps(original)
    def eval_policy_all(envs, policy, env_preprocessor, env_postprocessor, preprocessor, postprocessor,
                        n_episodes, **kwargs):  # fmt: skip
        if kwargs.get("max_parallel_tasks", 1) > 1:
            raise ValueError(PARALLEL_TASKS_REFUSED)
        run_dir = Path(kwargs.get("videos_dir") or kwargs["recording_dir"]).parent
        apply_policy_fixes(policy)
        recorder = SimulationRecorder(FeatureBuffer(run_dir, cfg.flush_every_s), n_episodes, cfg.hook_path)
        with recorder.attached(envs, policy, env_preprocessor):
            info = original(envs, policy, env_preprocessor, env_postprocessor, preprocessor, postprocessor,
                            n_episodes, **kwargs)  # fmt: skip
        recorder.buffer.close()
        try:
            publish_simulation(run_dir, recorder, policy, info, cfg)
        except ValueError as error:
            logging.error(f"Features kept in {run_dir}, but they could not be scored: {error}")
            errors.append(error)
        return info

    return eval_policy_all


def instrument_lerobot_eval(
    module, cfg: CKNNARunConfig, env_cfg=None
) -> tuple[contextlib.ExitStack, ScoringErrors]:
    """Make ``module`` (LeRobot's ``lerobot_eval``) capture and score as it evaluates; undo by closing the stack.

    ``eval_main`` looks up ``eval_policy_all`` and ``make_pre_post_processors`` in its module at
    call time: the first gathers and scores the features, the second applies the preprocessor
    fixes (:mod:`lerobot_cknna.fixes`). Given the env's config, the eval fixes apply too.

    Returns:
        The stack that undoes it, and the list that scoring errors go to.
    """
    errors = ScoringErrors()
    stack = contextlib.ExitStack()
    stack.enter_context(
        patched(module, "eval_policy_all", instrument_eval_policy_all(module.eval_policy_all, cfg, errors))
    )
    stack.enter_context(patched(module, "make_pre_post_processors", make_pre_post_processors))
    if env_cfg is not None:
        stack.enter_context(eval_fixes(module, env_cfg))
    return stack, errors


@contextmanager
def instrumented_lerobot_eval(cfg: CKNNARunConfig, env_cfg):
    """While the block runs, ``lerobot_eval.eval_main`` gathers and scores features as it evaluates in ``env_cfg``.

    Raises:
        ValueError: after the block, if the features could not be scored (e.g. too few samples).
    """
    from lerobot.scripts import lerobot_eval

    stack, errors = instrument_lerobot_eval(lerobot_eval, cfg, env_cfg)
    with stack:
        yield
    if errors:
        raise errors[0]
