"""Every registered fix: its defect shows on the pinned LeRobot, the fix removes it, and so does its upstream diff."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import lerobot
import pytest

from lerobot_cknna.compat import FIXES, apply_policy_fixes, fixes_table
from lerobot_cknna.testing.defects import DEFECTS
from lerobot_cknna.testing.tiny_policies import build_tiny_policy
from tests.utils import REPO

LEROBOT_SOURCE = Path(lerobot.__file__).resolve().parent
PATCHES = sorted((REPO / "patches").glob("*.diff"))


def test_every_fix_has_a_diff_a_scenario_and_a_row_in_the_readme():
    assert {f"{name}.diff" for name in FIXES} == {path.name for path in PATCHES}
    assert set(DEFECTS) == set(FIXES)
    assert fixes_table() in (REPO / "README.md").read_text()
    assert fixes_table() in (REPO / "patches" / "README.md").read_text()


@pytest.mark.slow(40)
@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_the_defect_shows_then_the_fix_removes_it(name, tmp_path):
    defect = DEFECTS[name]
    with pytest.raises(defect.error, match=defect.message):
        defect.run(tmp_path / "plain", False)
    defect.run(tmp_path / "fixed", True)


def test_policy_fixes_leave_other_policies_alone():
    assert apply_policy_fixes(build_tiny_policy("act")) == []


def test_a_policy_fix_applies_once():
    policy = build_tiny_policy("tdmpc", apply_fixes=False)
    assert apply_policy_fixes(policy) == ["tdmpc_image_key"]
    assert apply_policy_fixes(policy) == []


def _apply(diff: Path, root: Path) -> str:
    done = subprocess.run(["patch", "-p1", "-d", str(root), "-i", str(diff)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def patched_lerobot(tmp_path_factory) -> Path:
    """A copy of the installed lerobot with every diff in patches/ applied; each applies alone exactly."""
    pristine = tmp_path_factory.mktemp("pristine")
    shutil.copytree(LEROBOT_SOURCE, pristine / "lerobot", ignore=shutil.ignore_patterns("__pycache__"))
    patched = tmp_path_factory.mktemp("patched")
    shutil.copytree(pristine / "lerobot", patched / "lerobot")
    for diff in PATCHES:
        alone = tmp_path_factory.mktemp(diff.stem)
        shutil.copytree(pristine / "lerobot", alone / "lerobot")
        output = _apply(diff, alone)
        assert "offset" not in output and "fuzz" not in output, f"{diff.name} against lerobot 0.6.1: {output}"
        assert "fuzz" not in _apply(diff, patched), diff.name  # with the others: lines may move, never differ
    return patched


RUN_ALL_UNFIXED = """
import json, sys, tempfile
from pathlib import Path
import lerobot
from lerobot_cknna.testing.defects import DEFECTS
assert lerobot.__file__.startswith(sys.argv[1]), lerobot.__file__
results = {}
for name, defect in DEFECTS.items():
    with tempfile.TemporaryDirectory() as tmp:
        try:
            defect.run(Path(tmp), False)
            results[name] = "ok"
        except BaseException as error:
            results[name] = f"{type(error).__name__}: {error}"
print(json.dumps(results))
"""


@pytest.mark.slow(103)
def test_every_upstream_diff_removes_its_defect(patched_lerobot):
    env = {**os.environ, "PYTHONPATH": f"{patched_lerobot}{os.pathsep}{REPO}"}
    done = subprocess.run(
        [sys.executable, "-c", RUN_ALL_UNFIXED, str(patched_lerobot)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results == dict.fromkeys(DEFECTS, "ok")
