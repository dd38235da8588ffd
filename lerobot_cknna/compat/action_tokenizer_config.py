"""A saved Pi0-FAST preprocessor forgets which PaliGemma tokenizer its action-tokenizer step uses."""

from lerobot_cknna.compat.registry import PreprocessorFix, register

STEP = "action_tokenizer_processor"


@register("action_tokenizer_config")
class ActionTokenizerConfig(PreprocessorFix):
    """``ActionTokenizerProcessorStep.get_config`` saves neither ``paligemma_tokenizer_name`` nor ``fast_skip_tokens`` (processor/tokenizer_processor.py:540-559), which ``make_pi0_fast_pre_post_processors`` sets from the policy config.

    Loading the saved pipeline rebuilds the step with the defaults: the Hub's
    ``google/paligemma-3b-pt-224``, whatever ``text_tokenizer_name`` the policy was configured with.
    """

    symptom = "a saved Pi0-FAST preprocessor reloads the Hub's `google/paligemma-3b-pt-224`: a download, or `OSError` offline"
    any_type = False
    remedy = "the saved step is loaded with both values from the policy config (loading overrides)"

    def overrides(self, policy_config) -> dict[str, dict]:
        """The step's two values from the Pi0-FAST config."""
        return {
            STEP: {
                "paligemma_tokenizer_name": policy_config.text_tokenizer_name,
                "fast_skip_tokens": policy_config.fast_skip_tokens,
            }
        }
