"""Saved policy configs with keys that the current config class no longer has.

``PreTrainedConfig.from_pretrained`` hands ``config.json`` to draccus, which rejects any
field it does not know (``DecodingError``). Checkpoints saved before a field was removed
therefore stop loading: ``lerobot/vqbet_pusht`` carries ``mlp_hidden_dim``, dropped from
``VQBeTConfig`` in lerobot PR #2062. The fix drops such keys, with a warning naming each,
from a copy of the checkpoint directory; the weights are linked, not copied.
"""

import dataclasses
import json
import logging
import tempfile
from pathlib import Path

from lerobot.configs.policies import PreTrainedConfig
from lerobot.policies import factory  # noqa: F401  (registers every policy config type)

DESCRIPTION = "policy config.json keys that the config class no longer has are dropped"
PATCH = "patches/stale_config_keys.diff"
CONFIG_FILE = "config.json"


def stale_keys(config: dict) -> list[str]:
    """Keys of a saved config that its type's config class does not define."""
    config_class = PreTrainedConfig.get_choice_class(config["type"])
    known = {field.name for field in dataclasses.fields(config_class)}
    return sorted(set(config) - known - {"type"})


def without_stale_keys(policy_dir: Path, work_dir: Path) -> Path:
    """``policy_dir`` itself if its config is current, else a cleaned copy under ``work_dir``.

    Args:
        policy_dir: a saved policy directory (``config.json``, weights, processors).
        work_dir: where a cleaned copy may be made.

    Returns:
        A directory that ``from_pretrained`` can load.
    """
    policy_dir = Path(policy_dir)
    config = json.loads((policy_dir / CONFIG_FILE).read_text())
    stale = stale_keys(config)
    if not stale:
        return policy_dir
    logging.warning(
        f"{policy_dir / CONFIG_FILE} has keys that {config['type']} configs no longer define: "
        f"{', '.join(stale)}. Loading without them (lerobot 0.4.4 defect; {PATCH})."
    )
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    # A fresh directory per call: an earlier copy may link to a checkpoint that is gone.
    cleaned = Path(tempfile.mkdtemp(prefix=f"{policy_dir.name}-current-config-", dir=work_dir))
    for item in policy_dir.iterdir():
        if item.name != CONFIG_FILE:
            (cleaned / item.name).symlink_to(item.resolve())
    current = {key: value for key, value in config.items() if key not in stale}
    (cleaned / CONFIG_FILE).write_text(json.dumps(current, indent=4))
    return cleaned
