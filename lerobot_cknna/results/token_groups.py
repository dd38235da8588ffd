"""Token groups (``--cknna.token_groups``): a VLA's feat A over its image tokens and over its language tokens.

Feat A averages the hooked module's output over the tokens its token mask keeps (the hook
table's :class:`~lerobot_cknna.capture.hook_table.TokenMask`). The same mask splits into two
disjoint groups: ``image``, the tokens holding a camera's embedding, and ``language``, every other
kept token (the prompt's, template and special tokens included). Replay pools the module over
each group too, in the same forward, so feat A (``both``) is the groups' means weighted by their
token counts.

Stored beside the run's own features: ``token_groups/image/`` and ``token_groups/language/``,
run directories of their own (:mod:`lerobot_cknna.results.feature_sets`, each sample's token
count in ``n_tokens``), and ``token_groups/groups.json`` naming the module and what the hook table
says about its groups. ``both`` is the run's own ``features.safetensors``.

``token_groups.json`` (schema_version 2) holds ``schema_version``, then the fields of
``layers.json`` every scored set shares (``source``, ``n``, ``n_episodes``, ``k``,
``feature_prep``, ``exclusion``, ``eps``, ``n_permutations``, ``interval_level``, ``alpha``), then:

* ``path``: the module pooled; ``note``: what a reader must know about this type's groups, or ``None``;
* ``groups``: one record per group, ``both``, ``image``, ``language``: ``group``, ``feat_dim``,
  ``tokens_per_sample`` (``min``, ``mean``, ``max`` over the gathered samples; ``None`` for groups
  gathered before schema 2), and
  ``cknna`` and ``mutual_knn`` records as in ``cknna.json``'s ``headline`` (null with its
  ``threshold``, ``calibrated`` and ``p_value``; interval). Every group is scored like the headline
  at its k, and every group's null draws the same pairings in the same order; ``both`` is feat A,
  so its values equal the headline's.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from lerobot_cknna.capture.hook_table import HookSpec
from lerobot_cknna.capture.hooks import TOKEN_GROUPS, token_count_key, token_group_key
from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.feature_sets import BufferSet, score_sets
from lerobot_cknna.results.features_io import SavedFeatures, load_features
from lerobot_cknna.utils.io import write_text_atomic

TOKEN_GROUPS_DIR = "token_groups"
GROUPS_FILE = "groups.json"
TOKEN_GROUPS_FILE = "token_groups.json"
TOKEN_GROUPS_SCHEMA_VERSION = 2
FEAT_A_GROUP = "both"


@dataclass
class TokenGroupFeatures:
    """The samples of each token group of one module.

    Attributes:
        path: the module pooled (feat A's).
        note: what the hook table says about this type's groups, or ``None``.
        groups: per group of :data:`~lerobot_cknna.capture.hooks.TOKEN_GROUPS`, its samples
            (``feat_a`` holding the group's vectors, ``n_tokens`` how many tokens each averages).
    """

    path: str
    note: str | None
    groups: dict[str, SavedFeatures]


class TokenGroupBuffers(BufferSet):
    """One buffer per token group of feat A's module, under ``run_dir/token_groups/``."""

    def __init__(self, run_dir: Path, spec: HookSpec, flush_every_s: float = 30.0):
        """Start empty buffers for the token groups of ``spec``'s module and write ``groups.json``.

        Raises:
            ValueError: a group's directory already holds an earlier run's samples.
        """
        directory = Path(run_dir) / TOKEN_GROUPS_DIR
        keys = {token_group_key(spec.module_path, group): group for group in TOKEN_GROUPS}
        super().__init__(directory, keys, spec.module_path, {"token_groups": True}, flush_every_s)
        self.path, self.note = spec.module_path, spec.token_mask.groups_note
        manifest = {"path": self.path, "groups": list(TOKEN_GROUPS), "note": self.note}
        write_text_atomic(directory / GROUPS_FILE, json.dumps(manifest, indent=2))

    def n_tokens(self, captured: dict[str, torch.Tensor], key: str) -> torch.Tensor:
        """The (B,) tokens of the group at ``key`` in each sample, as the capture counted them."""
        return captured[token_count_key(self.path, self.keys[key])]

    def features(self) -> TokenGroupFeatures:
        """Every group's samples so far."""
        return TokenGroupFeatures(
            self.path, self.note, dict(zip(TOKEN_GROUPS, self.saved_features(), strict=True))
        )


def has_token_groups(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds token groups."""
    return (Path(run_dir) / TOKEN_GROUPS_DIR / GROUPS_FILE).is_file()


def load_token_groups(run_dir: Path) -> TokenGroupFeatures:
    """Read the token groups :class:`TokenGroupBuffers` wrote into ``run_dir`` (finished or not).

    Raises:
        FileNotFoundError: ``run_dir`` has no token groups.
    """
    directory = Path(run_dir) / TOKEN_GROUPS_DIR
    if not has_token_groups(run_dir):
        raise FileNotFoundError(
            f"No token groups in {run_dir} ({directory / GROUPS_FILE} is missing); run with --cknna.token_groups=true."
        )
    manifest = json.loads((directory / GROUPS_FILE).read_text())
    groups = {group: load_features(directory / group) for group in manifest["groups"]}
    return TokenGroupFeatures(manifest["path"], manifest["note"], groups)


def _count_summary(n_tokens: torch.Tensor | None) -> dict | None:
    if n_tokens is None:
        return None
    return {"min": int(n_tokens.min()), "mean": n_tokens.double().mean().item(), "max": int(n_tokens.max())}


def score_token_groups(
    features: SavedFeatures, token_groups: TokenGroupFeatures, cfg: CKNNAConfig, source: dict | None = None
) -> dict:
    """CKNNA and mutual kNN at ``cfg.k`` of feat A and of each token group; returns the ``token_groups.json`` record.

    Args:
        features: the run's own samples (feat A: both groups).
        token_groups: the same samples' token groups.
        cfg: the ``--cknna.*`` options, as for the headline.
        source: where the features came from, recorded as given.

    Raises:
        ValueError: the groups hold other samples than the run, or ``cfg.k`` does not fit them.
    """
    named = {FEAT_A_GROUP: features, **token_groups.groups}
    labels = [f"token group {group!r} of {token_groups.path}" for group in named]
    shared, scored = score_sets(list(named.values()), labels, cfg, source)
    counts = {group: samples.n_tokens for group, samples in token_groups.groups.items()}
    if all(count is not None for count in counts.values()):
        counts[FEAT_A_GROUP] = sum(counts.values())
    records = [
        {
            "group": group,
            "feat_dim": samples.feat_a.shape[1],
            "tokens_per_sample": _count_summary(counts.get(group)),
            **metrics,
        }
        for (group, samples), metrics in zip(named.items(), scored, strict=True)
    ]
    return {
        "schema_version": TOKEN_GROUPS_SCHEMA_VERSION,
        **shared,
        "path": token_groups.path,
        "note": token_groups.note,
        "groups": records,
    }
