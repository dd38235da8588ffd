"""TDMPC reads its image under the configured key, but is handed it under ``observation.image``.

``TDMPCPolicy.select_action`` copies the camera to ``OBS_IMAGE = "observation.image"`` and
``predict_action_chunk`` passes only that key to ``model.encode``, while
``TDMPCObservationEncoder.forward`` looks up ``next(iter(config.image_features))``. Any
TDMPC whose camera is not literally ``observation.image`` (LIBERO's is
``observation.images.image``) fails with a KeyError on its first action.
"""

import torch
from lerobot.utils.constants import OBS_IMAGE, OBS_STATE

DESCRIPTION = "TDMPC encoder reads the configured image key instead of observation.image"
PATCH = "patches/tdmpc_image_key.diff"


def _camera_key(policy) -> str:
    return next(iter(policy.config.image_features))


def is_present(policy) -> bool:
    """Whether the encoder fails on the observation dict that ``predict_action_chunk`` builds."""
    if policy.config.type != "tdmpc" or not policy.config.image_features:
        return False
    param = next(policy.parameters())
    shape = policy.config.image_features[_camera_key(policy)].shape
    probe = {
        OBS_IMAGE: torch.zeros(1, *shape, dtype=param.dtype, device=param.device),
        OBS_STATE: torch.zeros(
            1, *policy.config.robot_state_feature.shape, dtype=param.dtype, device=param.device
        ),
    }
    try:
        with torch.no_grad():
            policy.model.encode(probe)
    except KeyError:
        return True
    return False


def apply(policy) -> None:
    """Make this policy's encoder accept the image under ``observation.image``."""
    encoder = policy.model._encoder
    original_forward = encoder.forward
    camera_key = _camera_key(policy)

    def forward(obs_dict):
        if camera_key not in obs_dict and OBS_IMAGE in obs_dict:
            obs_dict = {**obs_dict, camera_key: obs_dict[OBS_IMAGE]}
        return original_forward(obs_dict)

    encoder.forward = forward
