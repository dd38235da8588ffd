"""``lerobot-eval --eval.recording=true`` records nothing of an episode that runs to the step limit."""

import contextlib
import functools
from collections.abc import Iterator

import numpy as np

from lerobot_cknna.compat.registry import EvalFix, register
from lerobot_cknna.utils.patching import patched


@register("eval_recording_timeouts")
class EvalRecordingTimeouts(EvalFix):
    """``rollout`` saves a recorded episode only when its env reports ``terminated`` or ``truncated`` (scripts/lerobot_eval.py:341-358), but stops stepping at ``max_steps`` on its own (:268, :364-365).

    LIBERO's env never truncates (envs/libero.py:390), so every episode that does not succeed
    within the step limit (most of them, and all of an untrained policy's) is left in the episode
    buffer and dropped when the dataset is finalized: the recording holds only the successes.
    """

    symptom = (
        "`--eval.recording=true` in LIBERO writes datasets with `total_episodes: 0` for every episode "
        "that did not succeed (only their stray PNG frames remain)"
    )
    remedy = (
        "while a recording rollout runs, the vector env's step reports `truncated` for every env at the "
        "step limit, where `rollout` stops anyway, so the episode is saved"
    )

    @contextlib.contextmanager
    def active(self, lerobot_eval, env_cfg) -> Iterator[None]:
        """While the block runs, a recording ``rollout`` saves the episodes it stops at its step limit."""
        rollout = lerobot_eval.rollout

        @functools.wraps(rollout)
        def rollout_saving_timeouts(env, *args, recording_dir=None, **kwargs):
            if recording_dir is None:
                return rollout(env, *args, recording_dir=recording_dir, **kwargs)
            with patched(env, "step", _truncating_at_limit(env)):
                return rollout(env, *args, recording_dir=recording_dir, **kwargs)

        with patched(lerobot_eval, "rollout", rollout_saving_timeouts):
            yield


def _truncating_at_limit(env):
    """``env.step`` that reports every env truncated at the ``_max_episode_steps``-th step since it was made."""
    step, max_steps = env.step, env.call("_max_episode_steps")[0]
    steps_taken = 0

    def step_truncating_at_limit(action):
        nonlocal steps_taken
        observation, reward, terminated, truncated, info = step(action)
        steps_taken += 1
        if steps_taken == max_steps:
            truncated = np.ones_like(truncated)
        return observation, reward, terminated, truncated, info

    return step_truncating_at_limit
