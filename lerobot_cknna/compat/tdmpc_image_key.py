"""TDMPC's encoder reads its camera under the configured key, but is handed it under ``observation.image``."""

import torch
from lerobot.utils.constants import OBS_IMAGE, OBS_STATE

from lerobot_cknna.compat.registry import PolicyFix, register


@register("tdmpc_image_key")
class TDMPCImageKey(PolicyFix):
    """``TDMPCObservationEncoder.forward`` reads ``next(iter(config.image_features))``, but ``select_action`` passes the camera as ``observation.image``.

    ``TDMPCPolicy.select_action`` copies the camera to ``OBS_IMAGE = "observation.image"`` and
    ``predict_action_chunk`` passes only that key to ``model.encode`` (modeling_tdmpc.py:143-145,
    :118-122), while the encoder looks up the configured key (:752-756). Any TDMPC whose camera
    is not literally ``observation.image`` (LIBERO's is ``observation.images.image``) fails.
    """

    symptom = "`KeyError: 'observation.images.image'` on the first action of a TDMPC with LIBERO's camera"
    any_type = False
    remedy = "that policy's encoder also finds its camera under `observation.image`"

    def is_present(self, policy) -> bool:
        """Whether the encoder fails on the observation dict that ``predict_action_chunk`` builds."""
        if not policy.config.image_features:
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

    def apply(self, policy) -> None:
        """Make this policy's encoder accept the image under ``observation.image``."""
        encoder = policy.model._encoder
        original_forward = encoder.forward
        camera_key = _camera_key(policy)

        def forward(obs_dict):
            if camera_key not in obs_dict and OBS_IMAGE in obs_dict:
                obs_dict = {**obs_dict, camera_key: obs_dict[OBS_IMAGE]}
            return original_forward(obs_dict)

        encoder.forward = forward


def _camera_key(policy) -> str:
    return next(iter(policy.config.image_features))
