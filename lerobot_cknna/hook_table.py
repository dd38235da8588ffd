"""Per-architecture facts: where each LeRobot policy computes its condition embedding (feat A).

One entry per policy type, checked against lerobot 0.4.4. Everything else in the package
reads this table, so adding a policy type means adding one entry here (and, if it has one,
its encode-only function in :mod:`lerobot_cknna.encode`).

An entry says:

* ``module_path``: dotted attribute path from the policy to the module whose output is
  feat A (attribute traversal, so a module shared under two names, like SAC's image
  encoder, is found under either);
* ``category``: ``VLA`` (vision + language), ``IL`` or ``RL`` (vision only), which decides
  what the scores can be compared with;
* ``output_key``: how to read the module's output (dict key, tuple index, ``None`` for a
  tensor);
* ``layout``: an einops pattern from the rows of all firings of one forward (spatial maps
  mean-pooled over H x W first) to ``b s f``: samples, observation steps, features.
  Cameras batched into rows (``n``) are regrouped into features; the last observation step
  is the current one and is kept;
* ``firings``: how many times the module fires in one forward (per camera for ACT);
* ``encode``: the encode-only function that runs just enough of the policy to fire it.
"""

from collections.abc import Callable
from dataclasses import dataclass

from lerobot_cknna import encode


@dataclass(frozen=True)
class HookSpec:
    """Where and how one policy type's feat A is captured."""

    module_path: str
    category: str
    layout: str
    output_key: str | int | None = None
    firings: Callable[[object], int] = lambda config: 1
    encode: Callable | None = None


def _n_cameras(config) -> int:
    return len(config.image_features)


HOOK_TABLE: dict[str, HookSpec] = {
    "act": HookSpec(
        module_path="model.backbone",
        category="IL",
        output_key="feature_map",
        layout="(n b) f -> b 1 (n f)",
        firings=_n_cameras,
        encode=encode.act,
    ),
    "diffusion": HookSpec(
        module_path="diffusion.rgb_encoder",
        category="IL",
        layout="(b s n) f -> b s (n f)",
        encode=encode.diffusion,
    ),
    "vqbet": HookSpec(
        module_path="vqbet.rgb_encoder",
        category="IL",
        layout="(b s n) f -> b s (n f)",
        encode=encode.vqbet,
    ),
    "sac": HookSpec(
        module_path="actor.encoder.image_encoder",
        category="RL",
        layout="(n b) f -> b 1 (n f)",
        encode=encode.sac,
    ),
    "tdmpc": HookSpec(
        module_path="model._encoder.image_enc_layers",
        category="RL",
        layout="(b s) f -> b s f",
        encode=encode.tdmpc,
    ),
}

# Used for a --cknna.hook_path on a policy type the table does not know.
GENERIC_SPEC = HookSpec(module_path="", category="unknown", layout="(b s) f -> b s f")


def spec_for(policy_type: str, hook_path: str | None = None) -> HookSpec:
    """The table entry for ``policy_type``, with ``hook_path`` overriding the module when given.

    Raises:
        ValueError: unknown type and no ``hook_path`` to fall back on.
    """
    if policy_type in HOOK_TABLE:
        spec = HOOK_TABLE[policy_type]
    elif hook_path:
        spec = GENERIC_SPEC
    else:
        raise ValueError(
            f"No hook entry for policy type {policy_type!r} (known: {', '.join(sorted(HOOK_TABLE))}). "
            "Pass --cknna.hook_path=<dotted.module.path> to capture a module of your choice."
        )
    if hook_path and hook_path != spec.module_path:
        return HookSpec(module_path=hook_path, category=spec.category, layout=GENERIC_SPEC.layout)
    return spec
