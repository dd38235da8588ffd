import pytest
import torch
from lerobot.processor import DataProcessorPipeline, ProcessorStepRegistry

from lerobot_cknna.drivers.proprioception_tap import ProprioceptionTapStep


def observation(state: torch.Tensor, tasks: list[str]) -> dict:
    return {
        "observation.state": state,
        "observation.images.image": torch.rand(len(state), 3, 8, 8),
        "task": tasks,
    }


def test_tap_records_the_state_and_tasks_and_changes_nothing():
    tap = ProprioceptionTapStep()
    pipeline = DataProcessorPipeline(steps=[tap])
    state = torch.randn(3, 8)
    out = pipeline(observation(state, ["a", "b", "c"]))
    torch.testing.assert_close(out["observation.state"], state)
    recorded, tasks = tap.latest
    torch.testing.assert_close(recorded, state)
    assert tasks == ["a", "b", "c"]
    state.add_(1.0)
    assert not torch.allclose(recorded, state), "the tap keeps a copy, not a view of the live tensor"


def test_tap_is_registered_and_survives_a_save_and_load(tmp_path):
    assert ProcessorStepRegistry.get("cknna_proprioception_tap") is ProprioceptionTapStep
    DataProcessorPipeline(
        steps=[ProprioceptionTapStep(state_key="observation.state")], name="tapped"
    ).save_pretrained(tmp_path)
    loaded = DataProcessorPipeline.from_pretrained(tmp_path, config_filename="tapped.json")
    (step,) = loaded.steps
    assert isinstance(step, ProprioceptionTapStep) and step.state_key == "observation.state"


def test_tap_placed_before_the_state_exists_says_where_to_put_it():
    pipeline = DataProcessorPipeline(steps=[ProprioceptionTapStep()])
    with pytest.raises(KeyError, match="Place the step after the one that builds the state"):
        pipeline({"observation.images.image": torch.rand(1, 3, 8, 8)})


def raw_libero_observation(batch_size: int) -> dict:
    """An observation as ``preprocess_observation`` hands LIBERO's to the env preprocessor."""
    rotation = torch.linalg.qr(torch.randn(batch_size, 3, 3))[0]
    quaternion = torch.nn.functional.normalize(torch.randn(batch_size, 4), dim=-1)
    return {
        "observation.images.image": torch.rand(batch_size, 3, 8, 8),
        "observation.images.image2": torch.rand(batch_size, 3, 8, 8),
        "observation.robot_state": {
            "eef": {"pos": torch.randn(batch_size, 3), "quat": quaternion, "mat": rotation},
            "gripper": {"qpos": torch.randn(batch_size, 2), "qvel": torch.randn(batch_size, 2)},
            "joints": {"pos": torch.randn(batch_size, 7), "vel": torch.randn(batch_size, 7)},
        },
        "task": ["pick"] * batch_size,
    }


def test_with_the_envs_own_steps_the_tap_records_libero_state_under_a_policys_env_processing():
    from lerobot.envs.configs import LiberoEnv
    from lerobot.policies.xvla.processor_xvla import make_xvla_libero_pre_post_processors

    libero_preprocessor = LiberoEnv().get_env_processors()[0]
    xvla_preprocessor = make_xvla_libero_pre_post_processors()[0]
    tap = ProprioceptionTapStep(state_steps=list(libero_preprocessor.steps))
    xvla_preprocessor.steps = [tap, *xvla_preprocessor.steps]
    observation = raw_libero_observation(batch_size=3)
    policy_view = xvla_preprocessor(observation)
    assert policy_view["observation.state"].shape == (3, 20), "X-VLA builds a state of its own"
    state, tasks = tap.latest
    torch.testing.assert_close(state, libero_preprocessor(observation)["observation.state"])
    assert state.shape == (3, 8) and tasks == ["pick"] * 3
