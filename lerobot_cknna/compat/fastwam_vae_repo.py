"""FastWAM reads its Wan2.2 VAE from a hard-coded Hub repository, not from the one its config names."""

import contextlib
import functools
import inspect
from collections.abc import Iterator

from lerobot_cknna.compat.registry import ConstructionFix, register
from lerobot_cknna.utils.patching import patched


@register("fastwam_vae_repo")
class FastWAMVAERepo(ConstructionFix):
    """``load_pretrained_wan_vae`` reads the VAE from the hard-coded ``Wan-AI/Wan2.2-TI2V-5B-Diffusers`` (wan/components.py:112-116), which no config field reaches, while the UMT5 text encoder of the same diffusers repository is read from the config's ``text_encoder_model_id`` (modeling_fastwam.py:263-274).

    So a FastWAM whose Wan2.2 components are local (offline, a mirror, a tiny test build) still
    asks the Hub for the VAE, on every construction: building a new policy and loading a saved
    one (``from_pretrained`` builds it first), since the VAE is kept out of ``model.safetensors``.
    """

    symptom = "`OSError: Wan-AI/Wan2.2-TI2V-5B-Diffusers does not appear to have a file named config.json` building any FastWAM offline, its other Wan2.2 components local or not"
    any_type = False
    remedy = "while a FastWAM is built, its VAE is read from the `vae/` folder of the repository its `text_encoder_model_id` names"

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """While the block runs, a FastWAM is built with the VAE of its ``text_encoder_model_id``'s repository."""
        from lerobot.policies.fastwam import modeling_fastwam
        from lerobot.policies.fastwam.wan.components import WAN22_DIFFUSERS_MODEL_ID

        if not is_present(modeling_fastwam.load_pretrained_wan_vae):
            yield
            return
        policy_cls = modeling_fastwam.FastWAMPolicy
        build_core_model = policy_cls._build_core_model

        def _build_core_model(policy, config):
            if config.text_encoder_model_id == WAN22_DIFFUSERS_MODEL_ID:  # the repository it reads anyway
                return build_core_model(policy, config)
            self.log_applied(f"VAE of {config.text_encoder_model_id}")
            load_vae = functools.partial(load_wan_vae, config.text_encoder_model_id)
            with patched(modeling_fastwam, "load_pretrained_wan_vae", load_vae):
                return build_core_model(policy, config)

        with patched(policy_cls, "_build_core_model", _build_core_model):
            yield


def is_present(load_pretrained_wan_vae) -> bool:
    """Whether LeRobot's VAE loader takes no repository (a fixed LeRobot's takes ``model_id``)."""
    return "model_id" not in inspect.signature(load_pretrained_wan_vae).parameters


def load_wan_vae(model_id: str, *, torch_dtype, device):
    """The Wan VAE of the diffusers repository ``model_id`` (its ``vae/`` folder), as ``load_pretrained_wan_vae`` wraps it."""
    from lerobot.policies.fastwam.wan import adapters, components

    vae = components.AutoencoderKLWan.from_pretrained(model_id, subfolder="vae", torch_dtype=torch_dtype)
    return adapters.WanVideoVAE38(dtype=torch_dtype, device=device, pretrained=vae)
