"""The hook table's entries: complete, consistent with the fix registry, variants derived from their base."""

import dataclasses

import pytest

from lerobot_cknna.capture.hook_table import (
    DIFFUSION_ENCODER_PER_CAMERA,
    DIFFUSION_SHARED_ENCODER,
    HOOK_TABLE,
    PI0,
    PI0_FAST,
    Category,
    HookSpec,
    check_token_groups,
    token_group_types,
)
from lerobot_cknna.compat import FIXES
from lerobot_cknna.testing.tiny_policies import TINY_CONFIGS


def entries() -> list[HookSpec]:
    specs = [entry for entry in HOOK_TABLE.values() if isinstance(entry, HookSpec)]
    return [*specs, DIFFUSION_SHARED_ENCODER, DIFFUSION_ENCODER_PER_CAMERA]


def test_every_type_with_a_tiny_build_has_an_entry_and_the_reverse():
    assert set(HOOK_TABLE) == set(TINY_CONFIGS)


def test_every_entry_states_its_category_and_how_to_read_its_module():
    for spec in entries():
        assert isinstance(spec.category, Category) and spec.category is not Category.UNKNOWN
        assert spec.module_path and "->" in spec.layout and spec.layer_path is not None


def test_the_fixes_an_entry_names_are_registered_for_its_type_alone():
    named = {name for spec in entries() for name in spec.fixes}
    assert named <= set(FIXES)
    assert all(not FIXES[name].any_type for name in named)
    assert {name for name, fix in FIXES.items() if not fix.any_type} == named


def test_variants_differ_from_their_base_only_where_the_architecture_does():
    def changed(spec, base):
        return {
            field.name
            for field in dataclasses.fields(HookSpec)
            if getattr(spec, field.name) != getattr(base, field.name)
        }

    pi05 = HOOK_TABLE["pi05"]
    assert changed(pi05, PI0) == {"token_mask"}
    assert dataclasses.replace(pi05.token_mask, groups_note=None) == PI0.token_mask
    assert changed(PI0_FAST, PI0) == {"firings", "token_mask", "fixes"}
    assert changed(DIFFUSION_ENCODER_PER_CAMERA, DIFFUSION_SHARED_ENCODER) == {
        "module_path", "layout", "firings", "layer_path"
    }  # fmt: skip


def test_the_vlas_and_only_they_split_feat_a_into_token_groups_but_those_whose_feat_a_has_no_language_tokens():
    vlas = {
        name
        for name, entry in HOOK_TABLE.items()
        if isinstance(entry, HookSpec) and entry.category is Category.VLA
    }
    # VLA-JEPA's feat A pools its embodied-action tokens, which are neither image nor language tokens;
    # LingBot-VA's and FastWAM's video tokens (the prompt reaches them by cross-attention).
    assert (
        set(token_group_types())
        == vlas - {"vla_jepa", "lingbot_va", "fastwam"}
        == {"smolvla", "xvla", "pi0", "pi05", "pi0_fast", "groot", "evo1", "eo1", "molmoact2", "wall_x"}
    )
    with pytest.raises(
        ValueError, match="'lingbot_va' has no token groups: feat A pools LingBot-VA's video tokens"
    ):
        check_token_groups(HOOK_TABLE["lingbot_va"], "lingbot_va")
    with pytest.raises(
        ValueError, match="'vla_jepa' has no token groups: feat A is the mean of its embodied-action"
    ):
        check_token_groups(HOOK_TABLE["vla_jepa"], "vla_jepa")
    with pytest.raises(ValueError, match="'fastwam' has no token groups: feat A pools FastWAM's first-frame"):
        check_token_groups(HOOK_TABLE["fastwam"], "fastwam")


def test_an_entry_counted_per_sample_fires_a_known_number_of_times():
    # Where the count varies, only the first firing of the whole batch is kept, not one per sample.
    assert all(spec.firings is not None for spec in entries() if spec.per_sample)
