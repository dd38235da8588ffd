"""lerobot-cknna: how well does a LeRobot policy's condition embedding line up with the robot's proprioception?

The public API, eight names:

* capture: :func:`capture_features` (hook a policy's feat A during ``select_action``),
  :func:`encode_features` (the same vectors from ``select_action`` stopped at the hook; the
  layer taps too with ``with_layers=True``), :func:`hook_names` (what can be captured);
* metrics: :func:`cknna`, :func:`mutual_knn`, :func:`cka` on features as given,
  :class:`FeaturePrep` (the explicit preparation step), :func:`assess` (scores over a range of k with
  episode-permutation nulls and jackknife intervals over episodes).

Everything else is internal. The names load lazily: ``import lerobot_cknna.metrics`` and the
metrics above load neither LeRobot nor transformers; the capture functions load LeRobot.
"""

import importlib

__all__ = [
    "FeaturePrep",
    "assess",
    "capture_features",
    "cka",
    "cknna",
    "encode_features",
    "hook_names",
    "mutual_knn",
]

_MODULES = {
    "capture_features": "lerobot_cknna.capture.hooks",
    "encode_features": "lerobot_cknna.capture.hooks",
    "hook_names": "lerobot_cknna.capture.hooks",
    "cknna": "lerobot_cknna.metrics.alignment",
    "mutual_knn": "lerobot_cknna.metrics.alignment",
    "cka": "lerobot_cknna.metrics.alignment",
    "assess": "lerobot_cknna.metrics.statistics",
    "FeaturePrep": "lerobot_cknna.metrics.feature_prep",
}


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module 'lerobot_cknna' has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULES[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)
