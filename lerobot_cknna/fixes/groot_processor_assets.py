"""GR00T's saved preprocessor forgets where its Eagle processor assets are.

``GrootEagleEncodeStep`` and ``GrootEagleCollateStep`` take ``tokenizer_assets_repo`` but
define no ``get_config``, so ``policy_preprocessor.json`` holds ``"config": {}`` for both. A
pipeline loaded back then looks for the Eagle processor in the default
``HF_LEROBOT_HOME/lerobot/eagle2hg-processor-groot-n1p5``, whatever the policy was built and
saved with (``FileNotFoundError`` offline, or another model's processor). The fix writes the
field into the saved pipeline file, so that loading passes it back to the steps.
"""

import json
from pathlib import Path

from lerobot.utils.constants import POLICY_PREPROCESSOR_DEFAULT_NAME

DESCRIPTION = "GR00T's Eagle processor steps save their tokenizer_assets_repo"
PATCH = "patches/groot_processor_assets.diff"
EAGLE_STEPS = ("groot_eagle_encode_v3", "groot_eagle_collate_v3")
FIELD = "tokenizer_assets_repo"


def is_present() -> bool:
    """Whether the Eagle encode step leaves ``tokenizer_assets_repo`` out of its saved config."""
    from lerobot.policies.groot.processor_groot import GrootEagleEncodeStep

    return FIELD not in GrootEagleEncodeStep(tokenizer_assets_repo="local/eagle").get_config()


def record_assets_repo(policy_dir: Path, tokenizer_assets_repo: str) -> bool:
    """Write ``tokenizer_assets_repo`` into the Eagle steps of the preprocessor saved in ``policy_dir``.

    Returns:
        Whether the file had Eagle steps without the field (and so was changed).
    """
    pipeline_file = Path(policy_dir) / f"{POLICY_PREPROCESSOR_DEFAULT_NAME}.json"
    pipeline = json.loads(pipeline_file.read_text())
    missing = [
        step
        for step in pipeline["steps"]
        if step.get("registry_name") in EAGLE_STEPS and FIELD not in step["config"]
    ]
    for step in missing:
        step["config"][FIELD] = tokenizer_assets_repo
    if missing:
        pipeline_file.write_text(json.dumps(pipeline, indent=4))
    return bool(missing)
