"""Fixtures shared across test modules: a LIBERO dataset recorded from the real simulator."""

import gc

import pytest

from lerobot_cknna.pi_environment import has_openpi_transformers
from lerobot_cknna.record_libero import record_libero_dataset

# Each environment collects the modules about it: .venv-pi/ the Pi family's, the main one the rest.
collect_ignore = ["test_pi_environment.py"] if has_openpi_transformers() else ["test_pi_family.py"]

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
    """Collect after each test: hook closures keep policies in cycles, and a tiny Pi policy holds 2 GB."""
    yield
    gc.collect()
