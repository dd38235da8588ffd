"""Saved policy configs with keys that the current config class no longer has."""

import dataclasses

from lerobot.configs.policies import PreTrainedConfig

from lerobot_cknna.compat.registry import CheckpointFix, register


@register("stale_config_keys")
class StaleConfigKeys(CheckpointFix):
    """``PreTrainedConfig.from_pretrained`` hands ``config.json`` to draccus, which rejects any key its config class does not define (configs/policies.py:235-236).

    Checkpoints saved before a field was removed therefore stop loading: ``lerobot/vqbet_pusht``
    carries ``mlp_hidden_dim``, dropped from ``VQBeTConfig`` in lerobot PR #2062.
    """

    symptom = "`DecodingError: The fields mlp_hidden_dim are not valid for VQBeTConfig` when loading `lerobot/vqbet_pusht`"
    remedy = "LeRobot parses a copy of the config without those keys, with a warning naming them"

    def rewrite(self, config: dict) -> tuple[dict, str]:
        """The config without the keys its type's config class does not define."""
        stale = stale_keys(config)
        if not stale:
            return config, ""
        kept = {key: value for key, value in config.items() if key not in stale}
        return kept, f"left out keys that {config['type']} configs no longer define: {', '.join(stale)}"


def stale_keys(config: dict) -> list[str]:
    """Keys of a saved config that its type's config class does not define (none for an unknown type)."""
    try:
        config_class = PreTrainedConfig.get_choice_class(config["type"])
    except KeyError:
        return []
    known = {field.name for field in dataclasses.fields(config_class)}
    return sorted(set(config) - known - {"type"})
