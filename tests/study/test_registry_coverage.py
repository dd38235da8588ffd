"""The studies and the hook table against the policy types the installed LeRobot registers."""

from pathlib import Path

import lerobot.policies  # noqa: F401  (importing the package registers every type)
import pytest
from lerobot.configs.policies import PreTrainedConfig

from lerobot_cknna.capture.hook_table import HOOK_TABLE, HookSpec
from lerobot_cknna.study.sweep_spec import load_sweep
from tests.utils import REPO, TINY_SIMULATION_STUDY, TINY_STUDY

# Types whose hook table entry refuses simulation (LingBot-VA: its model calls continue the episode).
REFUSE_SIMULATION = {
    name
    for name, entry in HOOK_TABLE.items()
    if isinstance(entry, HookSpec) and entry.episode_calls is not None
}


def study_file(path: Path, left_out: set[str] = frozenset()):
    return pytest.param(path, left_out, id=str(path.relative_to(REPO / "configs")))


@pytest.mark.parametrize(
    ("study", "left_out"),
    [
        study_file(TINY_STUDY),
        study_file(TINY_SIMULATION_STUDY, REFUSE_SIMULATION),
        study_file(REPO / "configs" / "study" / "sweep.yaml"),
    ],
)
def test_every_registered_type_is_in_the_hook_table_and_the_study(study, left_out):
    """A type a later LeRobot registers fails here until it has its entry and its study runs."""
    registered = set(PreTrainedConfig.get_known_choices())
    assert set(HOOK_TABLE) == registered, (
        f"registered by LeRobot, no hook table entry: {registered - set(HOOK_TABLE)}; "
        f"in the table, not registered: {set(HOOK_TABLE) - registered}"
    )
    studied = {run.policy_type for run in load_sweep(study).runs}
    assert studied == registered - left_out, (
        "every registered type has a run in the study (but those that refuse its mode), and only those: "
        f"missing {registered - left_out - studied}, extra {studied - (registered - left_out)}"
    )
