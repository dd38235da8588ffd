"""What a policy checkpoint is, read before LeRobot builds anything: its config, and types LeRobot removed.

``--policy.path`` may name a local directory or a Hub id; :func:`checkpoint_config` reads its
``config.json`` either way (from the Hub cache, or downloading just that file). Policies that
lerobot 0.6 no longer has are refused here with what to do instead, before any model is built:
a GR00T N1.5 checkpoint, or ``--policy.type=sac``. A SAC *directory* saved by lerobot 0.4 is not
refused: it loads as a Gaussian actor (:mod:`lerobot_cknna.fixes.sac_policy_type`).
"""

import json
from pathlib import Path

from huggingface_hub import hf_hub_download
from huggingface_hub.errors import HfHubHTTPError

CONFIG_FILE = "config.json"
# The last release of this package on lerobot 0.4.4 (Python 3.11).
PREVIOUS_RELEASE = "lerobot-cknna 0.1.0 (commit 896a533c5775)"
REMOVED_POLICY_TYPES = {
    "sac": (
        "lerobot 0.5 split SAC into the policy type 'gaussian_actor' (encoders and actor) and the SAC "
        "algorithm (critics, temperature: lerobot.rl.algorithms.sac). Use --policy.type=gaussian_actor; a SAC "
        "directory saved by lerobot 0.4 loads with --policy.path as a gaussian_actor."
    ),
}


def checkpoint_config_file(pretrained_name_or_path: str | Path, **hub_kwargs) -> Path | None:
    """The checkpoint's ``config.json``: in a local directory, or from the Hub (``None`` where there is none).

    Args:
        pretrained_name_or_path: a local directory or a Hub id, as ``--policy.path`` takes it.
        **hub_kwargs: ``revision``, ``cache_dir``, ``token``, ``local_files_only``, as LeRobot's loading takes them.
    """
    path = Path(pretrained_name_or_path)
    if (path / CONFIG_FILE).is_file():
        return path / CONFIG_FILE
    if path.is_dir():
        return None
    download = {
        key: value
        for key, value in hub_kwargs.items()
        if key in ("revision", "cache_dir", "token", "local_files_only")
    }
    try:
        return Path(hf_hub_download(repo_id=str(pretrained_name_or_path), filename=CONFIG_FILE, **download))
    except (HfHubHTTPError, OSError, ValueError):
        return None  # LeRobot's own loading says why


def refuse_removed_policy(config: dict, where: str) -> None:
    """Refuse a checkpoint of a policy lerobot 0.6 no longer builds, saying what to do.

    Raises:
        ValueError: a GR00T N1.5 checkpoint (lerobot 0.4 and 0.5 saved a ``tokenizer_assets_repo``,
            the Eagle processor of N1.5; 0.6 saves none).
    """
    if config.get("type") == "groot" and config.get("tokenizer_assets_repo") is not None:
        raise ValueError(
            f"{where} is a GR00T N1.5 checkpoint (its config sets tokenizer_assets_repo="
            f"{config['tokenizer_assets_repo']!r}), and LeRobot removed GR00T N1.5 after lerobot 0.5.1: lerobot "
            f"0.6 builds GR00T N1.7 only. Run it with lerobot <= 0.5.1 ({PREVIOUS_RELEASE} runs it on lerobot "
            "0.4.4), or use an N1.7 checkpoint."
        )


def refuse_removed_policy_type(policy_type: str | None) -> None:
    """Refuse a ``--policy.type`` that lerobot 0.6 no longer registers, saying what replaced it.

    Raises:
        ValueError: the type was removed.
    """
    if policy_type in REMOVED_POLICY_TYPES:
        raise ValueError(
            f"--policy.type={policy_type} no longer exists in lerobot 0.6: {REMOVED_POLICY_TYPES[policy_type]}"
        )


def read_checkpoint_config(pretrained_name_or_path: str | Path) -> dict | None:
    """A checkpoint's config as saved (``None`` where it cannot be read), refused if LeRobot removed its policy."""
    config_file = checkpoint_config_file(pretrained_name_or_path)
    if config_file is None:
        return None
    config = json.loads(config_file.read_text())
    refuse_removed_policy(config, str(pretrained_name_or_path))
    return config
