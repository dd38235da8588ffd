"""A SAC policy saved by lerobot 0.4 names a policy type that no longer exists."""

from lerobot_cknna.compat.registry import CheckpointFix, register

SAC_TYPE, GAUSSIAN_ACTOR_TYPE = "sac", "gaussian_actor"
# SACConfig fields of lerobot 0.4 that moved to the SAC algorithm (lerobot.rl.algorithms.sac) in 0.5.
ALGORITHM_KEYS = (
    "policy_update_freq", "discount", "temperature_init", "num_critics", "num_subsample_critics", "critic_lr",
    "actor_lr", "temperature_lr", "critic_target_update_weight", "utd_ratio", "target_entropy",
    "use_backup_entropy", "grad_clip_norm", "critic_network_kwargs", "use_torch_compile",
)  # fmt: skip


@register("sac_policy_type")
class SACPolicyType(CheckpointFix):
    """lerobot 0.5 split SAC into the ``gaussian_actor`` policy (encoders, actor) and the SAC algorithm (critics, temperature), and ``PreTrainedConfig.from_pretrained`` has no way to read a directory saved as ``"type": "sac"`` (configs/policies.py:222-228).

    The encoder and actor classes are structurally the same as 0.4's, so their weights load
    into a Gaussian actor; the critics and the temperature are not part of the policy any more
    (``from_pretrained`` loads with ``strict=False`` and logs them as unexpected).
    """

    symptom = "`ValueError: Policy type 'sac' is not registered` when loading a SAC saved by lerobot 0.4"
    remedy = (
        "LeRobot parses a copy of the config that names the type `gaussian_actor` and leaves out the "
        "algorithm's settings, with a warning naming them; the weights load from the checkpoint itself"
    )

    def rewrite(self, config: dict) -> tuple[dict, str]:
        """A 0.4 SAC config as a Gaussian actor's, without the settings that moved to the algorithm."""
        if config.get("type") != SAC_TYPE:
            return config, ""
        dropped = [key for key in ALGORITHM_KEYS if key in config]
        kept = {key: value for key, value in config.items() if key not in dropped}
        return {**kept, "type": GAUSSIAN_ACTOR_TYPE}, (
            f"policy type 'sac' read as '{GAUSSIAN_ACTOR_TYPE}'; the SAC algorithm's settings left out "
            f"(their weights are not loaded): {', '.join(dropped) or 'none'}"
        )
