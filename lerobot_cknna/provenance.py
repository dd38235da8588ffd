"""Where a run's numbers come from: the policy, its hook, and what its weights were trained on.

A CKNNA value means little without the weights' provenance: a policy fine-tuned on the
data it is scored on, one trained elsewhere and one with random weights answer different
questions. :func:`weights_provenance` decides it from, in order: the user's
``--cknna.weights``; no checkpoint (random); a ``cknna_provenance.json`` written beside the
weights (tiny builds write one); the dataset named in the checkpoint's ``train_config.json``
compared with the data scored; otherwise "unstated".
"""

import json
import logging
from pathlib import Path

from lerobot_cknna.hook_table import HookSpec

PROVENANCE_FILE = "cknna_provenance.json"
TRAIN_CONFIG_FILE = "train_config.json"


def _checkpoint_file(pretrained_path: str, name: str) -> Path | None:
    local = Path(pretrained_path) / name
    if local.is_file():
        return local
    if Path(pretrained_path).exists():
        return None
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(str(pretrained_path), name))
    except Exception as error:  # noqa: BLE001 - any hub failure just means "not known"
        logging.info(f"No {name} for {pretrained_path}: {error}")
        return None


def weights_provenance(pretrained_path: str | None, declared: str | None, target: str) -> dict:
    """``{"weights": ..., "weights_note": ...}`` for the policy at ``pretrained_path``.

    Args:
        pretrained_path: ``--policy.path`` (hub id or directory), or ``None`` for a policy built
            from its config.
        declared: ``--cknna.weights`` if the user gave it.
        target: what the features are scored on (a dataset repo id or an env type such as
            ``libero``), compared with the training dataset.
    """
    if declared is not None:
        return {"weights": declared, "weights_note": "declared with --cknna.weights"}
    if pretrained_path is None:
        return {"weights": "random", "weights_note": "built from its config (no --policy.path): random init"}
    provenance = _checkpoint_file(pretrained_path, PROVENANCE_FILE)
    if provenance is not None:
        return json.loads(provenance.read_text())
    train_config = _checkpoint_file(pretrained_path, TRAIN_CONFIG_FILE)
    if train_config is not None:
        trained_on = json.loads(train_config.read_text()).get("dataset", {}).get("repo_id")
        if trained_on:
            same = target.lower() in str(trained_on).lower() or str(trained_on).lower() in target.lower()
            return {
                "weights": "finetuned on target" if same else "other domain",
                "weights_note": f"trained on {trained_on} ({TRAIN_CONFIG_FILE}); scored on {target}",
            }
    return {
        "weights": "unstated",
        "weights_note": f"{pretrained_path} says nothing about its training data; pass --cknna.weights",
    }


def write_provenance(directory: Path, weights: str, note: str) -> None:
    """Record a checkpoint's provenance beside its weights (read back by :func:`weights_provenance`)."""
    (Path(directory) / PROVENANCE_FILE).write_text(json.dumps({"weights": weights, "weights_note": note}))


def run_source(policy, spec: HookSpec, provenance: dict, mode: str, data: dict) -> dict:
    """The ``source`` record of ``cknna.json``: policy, type, category, hook, weights, data."""
    return {
        "policy": str(policy.config.pretrained_path) if policy.config.pretrained_path else None,
        "policy_type": policy.config.type,
        "category": spec.category,
        "hook_path": spec.module_path,
        "attends_padding": spec.attends_padding,
        **provenance,
        "mode": mode,
        "data": data,
    }
