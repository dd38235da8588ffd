import pytest
import torch
from lerobot.processor import DataProcessorPipeline, ProcessorStepRegistry

from lerobot_cknna.proprioception_tap import ProprioceptionTapStep


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
