"""A processor step that records the proprioceptive state (feat B) as it flows through a pipeline.

Put it first in LeRobot's environment preprocessor, with the env's *own* processing as its
``state_steps``, and it records ``observation.state`` exactly as the env's processing builds it
(for LIBERO, 8-D: end-effector position, axis-angle, gripper), whatever a policy's own env
processing does next (X-VLA builds a 20-D state of its own) and before any normalizer::

    from lerobot_cknna.drivers.proprioception_tap import ProprioceptionTapStep

    own_steps = env_cfg.get_env_processors()[0].steps
    tap = ProprioceptionTapStep(state_steps=list(own_steps))
    env_preprocessor.steps.insert(0, tap)
    ...                                   # run the pipeline
    state, tasks = tap.latest             # (B, S) float32 CPU tensor, task strings

Without ``state_steps`` it records the state as it arrives (append it after the step that
builds the state). It changes nothing in the transition. It is registered in LeRobot's
processor registry as ``cknna_proprioception_tap``, so saved pipelines that contain it load
back (``state_steps`` are not saved: they are the run's env processing).
"""

from dataclasses import dataclass, field

import torch
from lerobot.configs.types import PipelineFeatureType, PolicyFeature
from lerobot.processor import EnvTransition, ProcessorStep, ProcessorStepRegistry, TransitionKey
from lerobot.utils.constants import OBS_STATE


@ProcessorStepRegistry.register(name="cknna_proprioception_tap")
@dataclass
class ProprioceptionTapStep(ProcessorStep):
    """Keeps a detached copy of the latest state (and task strings) passing through.

    Attributes:
        state_key: observation key of the proprioceptive state.
        state_steps: steps that build the state from the transition as it arrives; the tap runs
            them on the transition and records their state, passing on the transition it received.
        latest: ``(state, tasks)`` of the last transition, or ``None`` before the first one;
            ``tasks`` is a list of strings (empty when the transition carries none).
    """

    state_key: str = OBS_STATE
    state_steps: list[ProcessorStep] = field(default_factory=list, repr=False)
    latest: tuple[torch.Tensor, list[str]] | None = field(default=None, init=False, repr=False)

    def __call__(self, transition: EnvTransition) -> EnvTransition:
        """Record the state of this transition and pass the transition on unchanged."""
        built = transition
        for step in self.state_steps:
            built = step(built)
        observation = built.get(TransitionKey.OBSERVATION) or {}
        if self.state_key not in observation:
            raise KeyError(
                f"cknna_proprioception_tap: no {self.state_key!r} in the observation "
                f"(keys: {sorted(observation)}). Place the step after the one that builds the state, or give it the steps that do (state_steps)."
            )
        state = torch.as_tensor(observation[self.state_key]).detach().to("cpu", torch.float32, copy=True)
        tasks = (transition.get(TransitionKey.COMPLEMENTARY_DATA) or {}).get("task") or []
        self.latest = (state.reshape(-1, state.shape[-1]), [tasks] if isinstance(tasks, str) else list(tasks))
        return transition

    def get_config(self) -> dict:
        """What is saved with a pipeline: the state key."""
        return {"state_key": self.state_key}

    def reset(self) -> None:
        """Forget the last recorded state."""
        self.latest = None

    def transform_features(
        self, features: dict[PipelineFeatureType, dict[str, PolicyFeature]]
    ) -> dict[PipelineFeatureType, dict[str, PolicyFeature]]:
        """Features pass through unchanged."""
        return features
