import pytest
import torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.envs.configs import LiberoEnv
from lerobot.policies.factory import make_policy, make_pre_post_processors

from lerobot_cknna.capture import capture_features, encode_features
from lerobot_cknna.fixes import apply_runtime_fixes
from lerobot_cknna.hook_table import HOOK_TABLE
from lerobot_cknna.tiny_policies import CAMERAS, IMAGE_SHAPE, STATE_DIM, TINY_CONFIGS, save_tiny_policy


def raw_observation(n_cameras: int, batch_size: int = 2) -> dict:
    """What LeRobot's LIBERO env processing hands the policy preprocessor."""
    gen = torch.Generator().manual_seed(3)
    obs = {key: torch.rand(batch_size, *IMAGE_SHAPE, generator=gen) for key in CAMERAS[:n_cameras]}
    obs["observation.state"] = torch.randn(batch_size, STATE_DIM, generator=gen)
    obs["task"] = ["put the bowl on the plate"] * batch_size
    return obs


@pytest.mark.parametrize("policy_type", sorted(TINY_CONFIGS))
def test_saved_tiny_policy_loads_through_the_policy_path_code(policy_type, tmp_path):
    saved = save_tiny_policy(policy_type, tmp_path)
    # What lerobot-eval does with --policy.path=DIR (configs/eval.py, lerobot_eval.eval_main).
    cfg = PreTrainedConfig.from_pretrained(tmp_path)
    cfg.pretrained_path = str(tmp_path)
    policy = make_policy(cfg, env_cfg=LiberoEnv()).eval()
    preprocessor, _ = make_pre_post_processors(cfg, pretrained_path=str(tmp_path))
    apply_runtime_fixes(policy)

    for (name, loaded), (_, built) in zip(
        policy.state_dict().items(), saved.state_dict().items(), strict=True
    ):
        assert torch.equal(loaded, built), name
    assert type(policy) is type(saved)
    batch = preprocessor(raw_observation(len(policy.config.image_features)))
    policy.reset()
    with capture_features(policy) as capture:
        policy.select_action(dict(batch))
        captured = capture.pop(2)
    torch.testing.assert_close(captured, encode_features(policy, batch), rtol=1e-5, atol=1e-6)
    assert HOOK_TABLE[policy_type].category in ("IL", "RL")
