"""Where a run's numbers come from: the policy, its hook, and what its weights were trained on.

A CKNNA value means little without the weights' provenance: a policy fine-tuned on the
data it is scored on, one trained elsewhere and one with random weights answer different
questions. :func:`weights_provenance` decides it from, in order: the user's
``--cknna.weights``; no checkpoint (random); a ``cknna_provenance.json`` written beside the
weights (tiny builds write one); the dataset named in the checkpoint's ``train_config.json``
compared with the data scored; otherwise "unstated".
"""

import enum
import json
import re
from pathlib import Path

from lerobot_cknna.capture.hook_table import HookSpec
from lerobot_cknna.configs.checkpoints import TRAIN_CONFIG_FILE, checkpoint_file

PROVENANCE_FILE = "cknna_provenance.json"


class Weights(enum.StrEnum):
    """What a policy's weights were trained on, relative to the data its features are scored on."""

    FINETUNED_ON_TARGET = "finetuned on target"
    OTHER_DOMAIN = "other domain"
    RANDOM = "random"
    UNSTATED = "unstated"


# What a user may declare with --cknna.weights (UNSTATED is what is left when nobody says).
DECLARABLE_WEIGHTS = (Weights.FINETUNED_ON_TARGET, Weights.OTHER_DOMAIN, Weights.RANDOM)


def parse_weights(value: str | None, where: str = "--cknna.weights") -> Weights | None:
    """``value`` as :class:`Weights` (``None`` stays ``None``).

    Raises:
        ValueError: not one of the declarable values.
    """
    if value is None:
        return None
    try:
        weights = Weights(value)
    except ValueError:
        weights = None
    if weights not in DECLARABLE_WEIGHTS:
        raise ValueError(
            f"{where} must be one of {', '.join(repr(str(w)) for w in DECLARABLE_WEIGHTS)}, got {value!r}."
        )
    return weights


def _words(name: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", name.lower())) - {""}


def trained_on_target(trained_on: str, target: str) -> bool:
    """Whether a checkpoint trained on dataset ``trained_on`` was trained on ``target``.

    ``target`` is the dataset scored (a repo id: trained on the same repo id) or the simulated
    tasks (env suites such as ``libero_spatial``: trained on a dataset whose repo id shares a
    word with them, as ``HuggingFaceVLA/libero`` does).
    """
    if "/" in target:
        return trained_on.lower() == target.lower()
    return bool(_words(target) & _words(trained_on))


def weights_provenance(pretrained_path: str | None, declared: str | None, target: str) -> dict:
    """``{"weights": ..., "weights_note": ...}`` for the policy at ``pretrained_path``.

    Args:
        pretrained_path: ``--policy.path`` (hub id or directory), or ``None`` for a policy built
            from its config.
        declared: ``--cknna.weights`` if the user gave it.
        target: what the features are scored on (a dataset repo id or an env type such as
            ``libero``), compared with the training dataset (:func:`trained_on_target`).
    """
    if declared is not None:
        return {"weights": Weights(declared), "weights_note": "declared with --cknna.weights"}
    if pretrained_path is None:
        return {
            "weights": Weights.RANDOM,
            "weights_note": "built from its config (no --policy.path): random init",
        }
    provenance = checkpoint_file(pretrained_path, PROVENANCE_FILE)
    if provenance is not None:
        return json.loads(provenance.read_text())
    train_config = checkpoint_file(pretrained_path, TRAIN_CONFIG_FILE)
    if train_config is not None:
        trained_on = json.loads(train_config.read_text()).get("dataset", {}).get("repo_id")
        if trained_on:
            same = trained_on_target(str(trained_on), target)
            return {
                "weights": Weights.FINETUNED_ON_TARGET if same else Weights.OTHER_DOMAIN,
                "weights_note": f"trained on {trained_on} ({TRAIN_CONFIG_FILE}); scored on {target}",
            }
    return {
        "weights": Weights.UNSTATED,
        "weights_note": f"{pretrained_path} says nothing about its training data; pass --cknna.weights",
    }


def write_provenance(directory: Path, weights: Weights, note: str) -> None:
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
