"""The studies and the hook table against the policy types the installed LeRobot registers."""

import lerobot.policies  # noqa: F401  (importing the package registers every type)
import pytest
from lerobot.configs.policies import PreTrainedConfig

from lerobot_cknna.capture.hook_table import HOOK_TABLE
from lerobot_cknna.study.sweep_spec import load_sweep
from tests.utils import REPO, TINY_SIMULATION_STUDY, TINY_STUDY

# LeRobot 0.6.1's types this project does not cover yet (issue 15). A type that gets its hook table
# entry and study runs leaves this list; a type a later LeRobot registers fails the test below.
NOT_YET_COVERED = {"fastwam", "lingbot_va", "molmoact2"}


@pytest.mark.parametrize(
    "study",
    [TINY_STUDY, TINY_SIMULATION_STUDY, REPO / "configs" / "study" / "sweep.yaml"],
    ids=lambda p: p.name,
)
def test_every_registered_type_is_in_the_study_or_named_as_not_covered_yet(study):
    registered = set(PreTrainedConfig.get_known_choices())
    studied = {run.policy_type for run in load_sweep(study).runs}
    assert studied == set(HOOK_TABLE), "every hook table entry has a run in the study, and only those"
    assert not studied & NOT_YET_COVERED, (
        f"covered now, remove from NOT_YET_COVERED: {studied & NOT_YET_COVERED}"
    )
    assert studied | NOT_YET_COVERED == registered, (
        f"registered by LeRobot but neither studied nor listed as not covered: {registered - studied - NOT_YET_COVERED}"
    )
