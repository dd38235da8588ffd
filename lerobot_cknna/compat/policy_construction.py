"""What building or loading a policy needs in force: the construction fixes, and a saved tiny build's own sizes."""

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

from lerobot_cknna.compat.registry import construction_fixes

# Written by lerobot_cknna.testing.tiny_policies.save_tiny_policy: the directory's sizes exist only
# under that tiny build (the Pi family's: LeRobot would build it at full size).
TINY_BUILD_MARKER = "cknna_tiny_build.json"


@contextlib.contextmanager
def policy_construction(pretrained_path: str | Path | None) -> Iterator[None]:
    """What building or loading the policy at ``pretrained_path`` (``--policy.path``) needs in force.

    The construction fixes, and for a directory written by
    :func:`lerobot_cknna.testing.tiny_policies.save_tiny_policy` (it holds
    :data:`TINY_BUILD_MARKER`) its tiny build with its own local assets. Only such a directory
    loads :mod:`lerobot_cknna.testing`.
    """
    marker = Path(pretrained_path) / TINY_BUILD_MARKER if pretrained_path else None
    if marker is None or not marker.is_file():
        with construction_fixes():
            yield
        return
    from lerobot_cknna.testing.tiny_policies import tiny_build

    recorded = json.loads(marker.read_text())
    assets = marker.parent / recorded["assets"]
    logging.info(
        f"{pretrained_path} is a tiny build ({TINY_BUILD_MARKER}): building it with "
        f"tiny_build({recorded['policy_type']!r}) and the local assets in {assets}"
    )
    with tiny_build(recorded["policy_type"], assets):
        yield
