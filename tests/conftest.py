"""Fixtures shared across test modules: a LIBERO dataset recorded from the real simulator."""

import gc
import os

import pytest

# Nothing in the tests may reach the Hugging Face Hub: what is not local fails at once.
os.environ["HF_HUB_OFFLINE"] = "1"

from filelock import FileLock  # noqa: E402
from lerobot.datasets.lerobot_dataset import LeRobotDataset  # noqa: E402

from lerobot_cknna.drivers.libero.record import record_once  # noqa: E402
from lerobot_cknna.testing.tiny_policies import build_tiny_policy, libero_batch  # noqa: E402
from tests.utils import TINY_VARIANTS  # noqa: E402

RECORDED_REPO_ID = "local/libero_spatial_sim"


@pytest.fixture(scope="session")
def libero_dataset(tmp_path_factory, worker_id):
    """Two libero_spatial tasks x two scripted episodes x 10 frames, recorded once per test run.

    pytest-xdist's workers share it: the first to need it records it (over a minute of CPU) while
    the others wait for it, and the tests only read it.
    """
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent
    with FileLock(shared / "libero_spatial_sim.lock"):
        root = record_once(
            shared / "libero_spatial_sim",
            repo_id=RECORDED_REPO_ID,
            task_ids=(0, 1),
            episodes_per_task=2,
            n_steps=10,
        )
    return LeRobotDataset(RECORDED_REPO_ID, root=root)


@pytest.fixture(scope="session")
def tiny_policies():
    """``tiny_policies(variant)``: the tiny build of a :data:`~tests.utils.TINY_VARIANTS` key, built once per session.

    Tests that use it leave the policy as they found it (hooks removed, queues reset). transformers
    adds hooks of its own to a model on its first forward (to capture hidden states); they belong to
    the model, so each policy has run once before it is handed out.
    """
    built = {}

    def get(variant: str):
        if variant not in built:
            policy_type, changes = TINY_VARIANTS[variant]
            policy = build_tiny_policy(policy_type, **changes)
            policy.select_action(libero_batch(policy, batch_size=1))
            policy.reset()
            built[variant] = policy
        return built[variant]

    return get


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first, longest first, so that the quick ones are what is left to share at the end.

    Left at their place in the file, the minutes-long end-to-end tests all came last and one worker
    ran them alone while the other waited (work stealing cannot split a running test).
    """
    items.sort(key=_expected_seconds, reverse=True)


def _expected_seconds(item: pytest.Item) -> float:
    slow = item.get_closest_marker("slow")
    return slow.args[0] if slow else 0


@pytest.fixture(autouse=True)
def free_policies_left_in_reference_cycles():
    """Collect after each test: hook closures keep policies in reference cycles."""
    yield
    gc.collect()
