"""GR00T N1.7's preprocessor loads the Qwen3-VL processor of a hard-coded backbone, whatever the policy's is."""

import json
from pathlib import Path

from lerobot_cknna.compat.registry import PreprocessorFix, register

STEP_CLASS = "GrootN17VLMEncodeStep"


@register("groot_backbone_processor")
class GrootBackboneProcessor(PreprocessorFix):
    """``make_groot_pre_post_processors`` builds ``GrootN17VLMEncodeStep(model_name=GROOT_N1_7_BACKBONE_MODEL)`` (processor_groot.py:1258-1259), the Hub's ``nvidia/Cosmos-Reason2-2B``, while the policy builds the backbone its base checkpoint names (``model_name`` in its ``config.json``).

    No config field reaches the step, so a GR00T on any other backbone (a local one, a
    fine-tuned one) tokenizes with another model's processor, or cannot tokenize offline.
    """

    symptom = "`OSError: We couldn't connect to 'https://huggingface.co'` on the first GR00T action offline, or another backbone's tokenizer"
    any_type = False
    remedy = "the step's `model_name` is set to the backbone the base checkpoint names"

    def repair(self, preprocessor, policy_config) -> str:
        """Point the step at the base checkpoint's backbone, where the two differ."""
        backbone = base_checkpoint_backbone(policy_config.base_model_path)
        steps = [step for step in preprocessor.steps if type(step).__name__ == STEP_CLASS]
        if backbone is None or all(step.model_name == backbone for step in steps):
            return ""
        for step in steps:
            step.model_name, step._proc = backbone, None
        return f"{STEP_CLASS}.model_name = {backbone}"


def base_checkpoint_backbone(base_model_path: str | None) -> str | None:
    """The backbone a local GR00T base checkpoint names (``None`` for a Hub id: its processor is the Hub's)."""
    config_file = Path(base_model_path or "") / "config.json"
    if not base_model_path or not config_file.is_file():
        return None
    return json.loads(config_file.read_text()).get("model_name")
