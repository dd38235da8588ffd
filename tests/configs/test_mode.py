"""The mode and this package's own flags, read from the command line before LeRobot is imported."""

import draccus
import pytest

from lerobot_cknna.configs.mode import Mode, preflight
from tests.utils import fresh_python


@pytest.mark.parametrize(
    ("args", "mode"),
    [
        (["--policy.path=x"], Mode.SIMULATION),
        (["--policy.path=x", "--env.type=libero"], Mode.SIMULATION),
        (["--policy.path=x", "--dataset.repo_id=a/b", "--cknna.k=5"], Mode.REPLAY),
        (["--policy.path=x", "--eval.n_episodes=3", "--cknna.k_sweep=[5,10]"], Mode.SIMULATION),
    ],
)
def test_the_option_groups_select_the_mode(args, mode):
    assert preflight(args) is mode


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (["--env.type=libero", "--dataset.repo_id=a/b"], ValueError, "Choose one mode"),
        (["--cknna.prep_a=zscore"], ValueError, "Unknown feature prep 'zscore'"),
        (["--cknna.n_permutations=-1"], ValueError, "--cknna.n_permutations must be >= 0"),
        (
            ["--dataset.repo_id=a/b", "--cknna.layers=true", "--resume=true", "--output_dir=x"],
            ValueError,
            "--cknna.layers=true runs cannot be resumed",
        ),
        (["--dataset.repo_id=a/b", "--cknna.check_replay=true"], ValueError, "run it in simulation"),
        (["--dataset.repo_id=a/b", "--resume=true"], ValueError, "give that directory"),
        (["--config_path=/no/such.yaml"], FileNotFoundError, "no such file"),
    ],
)
def test_bad_own_flags_are_refused_before_anything_is_built(args, error, message):
    with pytest.raises(error, match=message):
        preflight(["--policy.path=x", *args])


def test_an_unknown_own_flag_is_a_parsing_error():
    with pytest.raises((draccus.utils.ParsingError, SystemExit)):
        preflight(["--policy.path=x", "--cknna.not_an_option=1"])


def test_the_config_file_counts_and_the_command_line_wins(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("dataset:\n  repo_id: a/b\ncknna:\n  k: 7\n  k_sweep: [5, 7]\n  layers: true\n")
    assert preflight([f"--config_path={config}"]) is Mode.REPLAY
    with pytest.raises(ValueError, match="Unknown feature prep"):
        preflight([f"--config_path={config}", "--cknna.prep_b=bogus"])
    config.write_text("dataset:\n  repo_id: a/b\ncknna:\n  token_groups: true\n")
    with pytest.raises(ValueError, match="--cknna.token_groups=true runs cannot be resumed"):
        preflight([f"--config_path={config}", "--resume=true", "--output_dir=x"])


def test_layers_and_token_groups_run_in_simulation_too():
    assert (
        preflight(["--policy.path=x", "--cknna.layers=true", "--cknna.token_groups=true"]) is Mode.SIMULATION
    )


def test_a_wrong_own_flag_is_reported_before_lerobots_policies_or_the_simulator_load():
    code = (
        "import sys\n"
        "sys.argv = ['lerobot-cknna', '--policy.path=lerobot/act', '--cknna.prep_a=bogus']\n"
        "from lerobot_cknna.scripts.lerobot_cknna import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exited:\n"
        "    heavy = ('lerobot.policies', 'lerobot.envs', 'robosuite', 'transformers', 'lerobot_cknna.compat')\n"
        "    print(exited.code, sorted(name for name in heavy if name in sys.modules))\n"
    )
    done = fresh_python(code)
    assert done.stdout.split("\n")[-2] == "2 []", done.stdout + done.stderr[-2000:]
    assert "Unknown feature prep 'bogus'" in done.stderr
