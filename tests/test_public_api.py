"""The public API: eight names, each with an example that runs, and metrics that load without LeRobot."""

import doctest
import importlib

import lerobot_cknna
from lerobot_cknna.testing.tiny_policies import libero_batch
from tests.utils import fresh_python

PUBLIC = [
    "FeaturePrep",
    "assess",
    "capture_features",
    "cka",
    "cknna",
    "encode_features",
    "hook_names",
    "mutual_knn",
]


def test_the_public_api_is_small_and_every_name_shows_an_example():
    assert sorted(lerobot_cknna.__all__) == PUBLIC and len(lerobot_cknna.__all__) <= 12
    for name in PUBLIC:
        assert "Example" in getattr(lerobot_cknna, name).__doc__, name


def test_the_metric_examples_run_as_written():
    for module in ("alignment", "statistics", "feature_prep", "calibration"):
        failed, attempted = doctest.testmod(importlib.import_module(f"lerobot_cknna.metrics.{module}"))
        assert attempted > 0 and failed == 0, module


def test_importing_the_metrics_loads_neither_lerobot_nor_transformers():
    code = (
        "import sys\n"
        "from lerobot_cknna import FeaturePrep, assess, cka, cknna, mutual_knn\n"
        "import lerobot_cknna.metrics.knn\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'lerobot', 'transformers'}))\n"
    )
    done = fresh_python(code)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr[-2000:]


def test_hook_names_lists_what_encode_features_returns(tiny_policies):
    policy = tiny_policies("smolvla")
    names = lerobot_cknna.hook_names(policy)
    assert names[-1] == "model.vlm_with_expert.vlm.model.text_model.norm" and len(names) == 3
    per_layer = lerobot_cknna.encode_features(policy, libero_batch(policy, batch_size=2), with_layers=True)
    assert list(per_layer) == names
