"""Run-time fixes for the lerobot 0.6.1 defects that stand between a policy and its feat A.

One module per fix, each a class registered in :mod:`lerobot_cknna.compat.registry` (which
says where each kind is applied); ``patches/`` holds the upstream-ready diff of each. Each
acts only where its defect shows, so a LeRobot release that fixed it is left alone.
"""

from lerobot_cknna.compat import (  # noqa: F401  (each module registers its fix)
    action_tokenizer_config,
    dataset_kwargs,
    direct_forward_calls,
    eval_recording_features,
    eval_recording_rollouts,
    eval_recording_timeouts,
    fastwam_vae_repo,
    groot_backbone_processor,
    sac_policy_type,
    stale_config_keys,
    tdmpc_image_key,
    xvla_env_steps,
)
from lerobot_cknna.compat.registry import (
    FIXES,
    apply_policy_fixes,
    construction_fixes,
    eval_fixes,
    fixed_config_loading,
    fixes_table,
    make_pre_post_processors,
)

__all__ = [
    "FIXES",
    "apply_policy_fixes",
    "construction_fixes",
    "eval_fixes",
    "fixes_table",
    "fixed_config_loading",
    "make_pre_post_processors",
]
