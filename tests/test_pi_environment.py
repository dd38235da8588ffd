"""Outside ``.venv-pi/``: asking for a Pi-family policy says how to build and use the environment it needs."""

import pytest

from lerobot_cknna.pi_environment import PI_FAMILY, PiEnvironmentError, has_openpi_transformers
from lerobot_cknna.tiny_policies import TINY_CONFIGS, build_tiny_policy, tiny_types_here
from tests.scripts.test_lerobot_cknna import lerobot_cknna


def test_this_is_the_main_environment():
    assert not has_openpi_transformers()
    assert not set(tiny_types_here()) & set(PI_FAMILY)
    assert set(tiny_types_here()) | set(PI_FAMILY) == set(TINY_CONFIGS)


@pytest.mark.parametrize("policy_type", PI_FAMILY)
def test_a_tiny_pi_build_names_the_environment_and_the_command(policy_type):
    with pytest.raises(PiEnvironmentError, match=r"make setup-pi.*\.venv-pi/bin/lerobot-cknna"):
        build_tiny_policy(policy_type)


def test_the_command_refuses_a_pi_policy_with_exit_2(tmp_path):
    done = lerobot_cknna("--policy.type=pi05", "--dataset.repo_id=x/y", cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "make setup-pi" in done.stderr and ".venv-pi/" in done.stderr and "Traceback" not in done.stderr
