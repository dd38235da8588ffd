"""What a policy checkpoint is, read before LeRobot builds anything: its config, its training, removed types.

``--policy.path`` may name a local directory or a Hub id; :func:`checkpoint_file` reads one of
its files either way (from the Hub cache, or downloading just that file): ``config.json``, and
``train_config.json`` for the LIBERO suite a run without ``--env.*`` simulates
(:func:`libero_suite_of`). Policies that
lerobot 0.6 no longer has are refused here with what to do instead, before any model is built:
a GR00T N1.5 checkpoint, or ``--policy.type=sac``. A SAC *directory* saved by lerobot 0.4 is not
refused: it loads as a Gaussian actor (:mod:`lerobot_cknna.compat.sac_policy_type`).
"""

import json
import logging
from pathlib import Path

from huggingface_hub import hf_hub_download
from huggingface_hub.errors import HfHubHTTPError

CONFIG_FILE = "config.json"
TRAIN_CONFIG_FILE = "train_config.json"
# The suites of LIBERO's standard benchmark, in LeRobot's names (libero_10 is LIBERO-Long).
LIBERO_SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90")
DEFAULT_LIBERO_SUITE = "libero_spatial"
# The last release of this package on lerobot 0.4.4 (Python 3.11).
PREVIOUS_RELEASE = "lerobot-cknna 0.1.0 (commit 896a533c5775)"
REMOVED_POLICY_TYPES = {
    "sac": (
        "lerobot 0.5 split SAC into the policy type 'gaussian_actor' (encoders and actor) and the SAC "
        "algorithm (critics, temperature: lerobot.rl.algorithms.sac). Use --policy.type=gaussian_actor; a SAC "
        "directory saved by lerobot 0.4 loads with --policy.path as a gaussian_actor."
    ),
}


def checkpoint_file(pretrained_name_or_path: str | Path, filename: str, **hub_kwargs) -> Path | None:
    """One file of a checkpoint: in a local directory, or from the Hub (``None`` where there is none).

    Args:
        pretrained_name_or_path: a local directory or a Hub id, as ``--policy.path`` takes it.
        filename: the file, e.g. ``config.json`` or ``train_config.json``.
        **hub_kwargs: ``revision``, ``cache_dir``, ``token``, ``local_files_only``, as LeRobot's loading takes them.
    """
    path = Path(pretrained_name_or_path)
    if (path / filename).is_file():
        return path / filename
    if path.exists():
        return None
    download = {
        key: value
        for key, value in hub_kwargs.items()
        if key in ("revision", "cache_dir", "token", "local_files_only")
    }
    try:
        return Path(hf_hub_download(repo_id=str(pretrained_name_or_path), filename=filename, **download))
    except (HfHubHTTPError, OSError, ValueError) as error:
        logging.info(f"No {filename} for {pretrained_name_or_path}: {error}")
        return None


def checkpoint_config_file(pretrained_name_or_path: str | Path, **hub_kwargs) -> Path | None:
    """The checkpoint's ``config.json`` (``None`` where there is none: LeRobot's own loading says why)."""
    return checkpoint_file(pretrained_name_or_path, CONFIG_FILE, **hub_kwargs)


def libero_suite_of(pretrained_name_or_path: str | Path | None) -> tuple[str, str]:
    """The LIBERO suite(s) a checkpoint was evaluated or trained on, and where that was read.

    The checkpoint's ``train_config.json`` says it when its training evaluated in LIBERO
    (``env.task``) or its dataset's repo id names a suite (``..._libero_goal_...``); otherwise
    :data:`DEFAULT_LIBERO_SUITE`.

    Returns:
        The suite (``--env.task``; several are comma-separated) and the reason, for the log.
    """
    if pretrained_name_or_path is None:
        return DEFAULT_LIBERO_SUITE, "the policy is built from its config (no --policy.path)"
    train_config_file = checkpoint_file(pretrained_name_or_path, TRAIN_CONFIG_FILE)
    train_config = json.loads(train_config_file.read_text()) if train_config_file is not None else {}
    env = train_config.get("env") or {}
    if env.get("type") == "libero" and env.get("task"):
        return env["task"], f"its {TRAIN_CONFIG_FILE} evaluated in LIBERO with env.task={env['task']}"
    repo_id = str((train_config.get("dataset") or {}).get("repo_id") or "")
    named = [suite for suite in LIBERO_SUITES if suite in repo_id.lower()]
    if named:
        return ",".join(named), f"its {TRAIN_CONFIG_FILE} trained on {repo_id}"
    return DEFAULT_LIBERO_SUITE, f"{pretrained_name_or_path} names no LIBERO suite in its {TRAIN_CONFIG_FILE}"


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
