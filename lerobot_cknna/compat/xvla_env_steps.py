"""X-VLA's LIBERO env processing repeats steps that X-VLA's own preprocessor already runs."""

import contextlib
import dataclasses
import functools
from collections.abc import Iterator

from lerobot_cknna.compat.registry import EvalFix, register
from lerobot_cknna.utils.patching import patched


@register("xvla_env_steps")
class XVLAEnvSteps(EvalFix):
    """``make_xvla_libero_pre_post_processors`` (policies/xvla/processor_xvla.py:515-535) gives the env preprocessor ``XVLAImageNetNormalizeProcessorStep`` and ``XVLAAddDomainIdProcessorStep``, and ``make_xvla_pre_post_processors`` (:57-73) puts both in the policy's own preprocessor too; ``rollout`` runs the env preprocessor, then the policy's (scripts/lerobot_eval.py:289-291).

    An X-VLA checkpoint saved by lerobot 0.6.1 therefore normalizes its images twice in
    ``lerobot-eval``, and the policy's ``XVLAImageToFloatProcessorStep`` refuses the result
    (LeRobot issue #2955). Checkpoints whose saved preprocessor lacks the two steps (the Hub's
    ``lerobot/xvla-libero``, issue #2954) need the env's copies, so removing them from the env
    processing alone would break those.
    """

    symptom = "`ValueError: Image 'observation.images.image' has values outside [0, 255] range` at the first step of an X-VLA LIBERO evaluation"
    remedy = "the env preprocessor skips the steps the policy's own preprocessor already runs"
    any_type = False

    @contextlib.contextmanager
    def active(self, lerobot_eval, env_cfg) -> Iterator[None]:
        """While the block runs, ``eval_policy_all`` gets an env preprocessor without the policy's own steps."""
        evaluate = lerobot_eval.eval_policy_all

        @functools.wraps(evaluate)
        def eval_policy_all(envs, policy, env_preprocessor, env_postprocessor, preprocessor, *args, **kwargs):
            env_preprocessor = self.without_repeats(env_preprocessor, preprocessor)
            return evaluate(envs, policy, env_preprocessor, env_postprocessor, preprocessor, *args, **kwargs)

        with patched(lerobot_eval, "eval_policy_all", eval_policy_all):
            yield

    def without_repeats(self, env_preprocessor, preprocessor):
        """``env_preprocessor`` less the X-VLA steps ``preprocessor`` runs as well (the same object when none)."""
        from lerobot.policies.xvla.processor_xvla import (
            XVLAAddDomainIdProcessorStep,
            XVLAImageNetNormalizeProcessorStep,
        )

        policy_steps = {type(step) for step in preprocessor.steps}
        repeated = {XVLAAddDomainIdProcessorStep, XVLAImageNetNormalizeProcessorStep} & policy_steps
        kept = [step for step in env_preprocessor.steps if type(step) not in repeated]
        if len(kept) == len(env_preprocessor.steps):
            return env_preprocessor
        dropped = ", ".join(sorted(cls.__name__ for cls in repeated))
        self.log_applied(f"dropped {dropped} from the env preprocessor")
        return dataclasses.replace(env_preprocessor, steps=kept)
