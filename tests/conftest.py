"""Fixtures shared across test modules: a LIBERO dataset recorded from the real simulator."""

import gc
import os

import pytest

# Nothing in the tests may reach the Hugging Face Hub: what is not local fails at once.
os.environ["HF_HUB_OFFLINE"] = "1"

from lerobot_cknna.record_libero import record_libero_dataset  # noqa: E402

RECORDED_REPO_ID = "local/libero_spatial_sim"


@pytest.fixture(scope="session")
def libero_dataset(tmp_path_factory):
    """Two libero_spatial tasks x two scripted episodes x 10 frames, recorded once per session."""
    root = tmp_path_factory.mktemp("libero") / "libero_spatial_sim"
    return record_libero_dataset(
        root, repo_id=RECORDED_REPO_ID, task_ids=(0, 1), episodes_per_task=2, n_steps=10
    )


@pytest.fixture(autouse=True)
def free_policies_left_in_reference_cycles():
    """Collect after each test: hook closures keep policies in reference cycles."""
    yield
    gc.collect()
