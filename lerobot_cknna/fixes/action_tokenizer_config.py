"""A saved Pi0-FAST preprocessor forgets which PaliGemma tokenizer its action-tokenizer step uses.

``ActionTokenizerProcessorStep.get_config`` (processor/tokenizer_processor.py:540) saves
``action_tokenizer_name`` and ``max_action_tokens`` but not ``paligemma_tokenizer_name`` or
``fast_skip_tokens``, which ``make_pi0_fast_pre_post_processors`` sets from the policy config
(``text_tokenizer_name``, ``fast_skip_tokens``). Loading the saved pipeline rebuilds the step
with the defaults: the Hub's ``google/paligemma-3b-pt-224`` (a download, or an error offline)
whatever tokenizer the policy was configured with.

The fix is a loading override: the step gets both values back from the policy config.
"""

DESCRIPTION = "saved Pi0-FAST action-tokenizer step drops paligemma_tokenizer_name and fast_skip_tokens"
PATCH = "patches/action_tokenizer_config.diff"
STEP = "action_tokenizer_processor"


def preprocessor_overrides(policy_config) -> dict[str, dict]:
    """Overrides for ``make_pre_post_processors(..., preprocessor_overrides=)`` restoring the dropped values.

    Args:
        policy_config: the loaded policy config; only Pi0-FAST pipelines have the step.

    Returns:
        ``{step name: {field: value}}`` for Pi0-FAST, else ``{}``.
    """
    if policy_config.type != "pi0_fast":
        return {}
    return {
        STEP: {
            "paligemma_tokenizer_name": policy_config.text_tokenizer_name,
            "fast_skip_tokens": policy_config.fast_skip_tokens,
        }
    }
