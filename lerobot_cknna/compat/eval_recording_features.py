"""``lerobot-eval --eval.recording=true`` cannot record LIBERO: its features are named by paths with ``/``."""

import contextlib
from collections.abc import Iterator

from lerobot_cknna.compat.registry import EvalFix, register
from lerobot_cknna.utils.patching import patched


@register("eval_recording_features")
class EvalRecordingFeatures(EvalFix):
    """``lerobot_eval`` names a recording's dataset features by the env's feature keys (``_env_features_to_dataset_features``, scripts/lerobot_eval.py:108-120), which for LIBERO are paths into the nested raw observation (``pixels/agentview_image``, ``robot_state/eef/pos``); ``LeRobotDataset`` refuses names with ``/``, and ``_build_raw_frame`` (:123-164) reads only top-level arrays, so the nested robot state could not be recorded either.

    Every ``EnvConfig`` maps those keys to LeRobot names in its ``features_map``
    (``observation.images.image``, ``observation.state.eef_pos``, ...).
    """

    symptom = "`ValueError: Feature names should not contain '/'` at the first LIBERO rollout of `lerobot-eval --eval.recording=true`"
    remedy = (
        "the recording's features are named by the env config's `features_map`, and each raw observation's "
        "nested entries are read under those names"
    )

    @contextlib.contextmanager
    def active(self, lerobot_eval, env_cfg) -> Iterator[None]:
        """While the block runs, ``lerobot_eval`` records ``env_cfg``'s rollouts under LeRobot names."""
        names = getattr(env_cfg, "features_map", None) or {}
        if not any("/" in key for key in names):
            yield
            return
        dataset_features = lerobot_eval._env_features_to_dataset_features
        build_raw_frame = lerobot_eval._build_raw_frame

        def named_dataset_features(env_features: dict) -> dict:
            return dataset_features({names.get(key, key): feature for key, feature in env_features.items()})

        def frame_from_named_observation(raw_obs, *args, **kwargs):
            named = {names[path]: value for path, value in _leaves(raw_obs) if path in names}
            return build_raw_frame({**raw_obs, **named}, *args, **kwargs)

        with (
            patched(lerobot_eval, "_env_features_to_dataset_features", named_dataset_features),
            patched(lerobot_eval, "_build_raw_frame", frame_from_named_observation),
        ):
            yield


def _leaves(observation: dict, prefix: str = "") -> Iterator[tuple[str, object]]:
    """``(path, value)`` of every non-dict value in a nested observation, paths joined by ``/``."""
    for key, value in observation.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _leaves(value, f"{path}/")
        else:
            yield path, value
