"""``lerobot-cknna-sweep`` end to end, offline: the eleven-type tiny study, failures, unrankable runs, bad input."""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lerobot_cknna.configs.sweep import load_sweep
from lerobot_cknna.report import HEADLINE_COLUMNS, MISSING
from tests.test_plots import assert_is_a_real_figure

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
REPO = Path(__file__).resolve().parents[2]
TINY_STUDY = REPO / "configs" / "study_tiny" / "sweep.yaml"
FAST = ["--cknna.k=5", "--cknna.n_permutations=20", "--cknna.report=false"]


def sweep(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lerobot_cknna.scripts.lerobot_cknna_sweep", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ENV,
        timeout=3000,
    )


@pytest.fixture(scope="module")
def offline_assets(tmp_path_factory, libero_dataset):
    """Assets shared by this module's sweeps: the session's recording where the tiny study keeps its own."""
    assets = tmp_path_factory.mktemp("sweep_assets")
    recording = load_sweep(TINY_STUDY).record_libero.directory(assets)
    recording.symlink_to(Path(libero_dataset.root).resolve(), target_is_directory=True)
    return assets


def write_sweep(path: Path, runs: list[dict], common_args: list[str] = FAST) -> Path:
    """A sweep over tiny ``runs`` on the tiny study's recording."""
    recording = yaml.safe_load(TINY_STUDY.read_text())["record_libero"]
    path.write_text(yaml.safe_dump({"runs": runs, "common_args": common_args, "record_libero": recording}))
    return path


def comparison_rows(out: Path, first_column: str) -> dict[str, list[str]]:
    """The comparison table's rows by run name (ranked tables start with the rank)."""
    lines = (out / "comparison.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_column} |"))
    table = list(itertools.takewhile(lambda line: line.startswith("|"), lines[start:]))
    columns = [cell.strip() for cell in table[0].strip("|").split(" | ")]
    rows = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in table[2:]]
    return {row[columns.index("Run")]: row for row in rows}


def test_the_tiny_study_runs_all_eleven_types_offline(offline_assets, tmp_path):
    out = tmp_path / "sweep"
    done = sweep(str(TINY_STUDY), f"--offline_assets={offline_assets}", f"--output_dir={out}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-5000:]
    runs = json.loads((out / "sweep.json").read_text())["runs"]
    assert len(runs) == 11 and all(run["succeeded"] for run in runs)
    assert all(run["command"][0] == sys.executable for run in runs)
    pi_log = (out / "logs" / "pi0.stderr.log").read_text()
    assert "is a tiny build (cknna_tiny_build.json)" in pi_log

    rows = comparison_rows(out, "Rank")
    assert sorted(rows) == sorted(run["name"] for run in runs)
    for name, row in rows.items():
        assert len(row) == 2 + len(HEADLINE_COLUMNS), name
        assert all(cell and cell != MISSING for cell in row), (name, row)
    records = [json.loads((out / "runs" / name / "cknna.json").read_text()) for name in rows]
    assert len({record["samples_digest"] for record in records}) == 1
    assert {record["n"] for record in records} == {40}
    report = (out / "comparison.md").read_text()
    assert "Ranked by calibrated score" in report and "failed" not in report
    assert "CKNNA is not comparable across categories" in report and "## Weights" in report
    assert "Random weights (" in report
    assert_is_a_real_figure(out / "comparison.png")
    layer_rows = [line for line in report.split("## Layer sweep")[1].splitlines() if line.startswith("| ")]
    assert sorted(row.split(" | ")[0].strip("| ") for row in layer_rows[1:]) == sorted(rows)
    assert all((out / "runs" / name / "layers.json").is_file() for name in rows)
    assert_is_a_real_figure(out / "layer_curves.png")


def test_a_failing_run_is_recorded_and_the_others_still_compared(offline_assets, tmp_path):
    sweep_file = write_sweep(
        tmp_path / "sweep.yaml",
        [
            {
                "name": "gaussian_actor",
                "policy_type": "gaussian_actor",
                "tiny": True,
                "provenance": "tiny Gaussian actor, stated in the run file",
            },
            {"name": "tdmpc", "policy_type": "tdmpc", "tiny": True},
            {
                "name": "broken",
                "policy_type": "gaussian_actor",
                "tiny": True,
                "args": ["--cknna.hook_path=actor.nowhere"],
            },
        ],
    )
    out = tmp_path / "out"
    done = sweep(str(sweep_file), f"--offline_assets={offline_assets}", f"--output_dir={out}", cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "1 of 3 runs failed: broken" in done.stderr
    runs = {run["name"]: run for run in json.loads((out / "sweep.json").read_text())["runs"]}
    assert runs["broken"]["returncode"] == 2 and "actor.nowhere" in runs["broken"]["stderr_tail"]
    assert "actor.nowhere" in (out / "logs" / "broken.stderr.log").read_text()
    assert runs["gaussian_actor"]["succeeded"] and runs["tdmpc"]["succeeded"]

    rows = comparison_rows(out, "Rank")
    assert rows["broken"][0] == "—" and rows["broken"][2].startswith("**failed**: exit 2")
    assert {rows["gaussian_actor"][0], rows["tdmpc"][0]} == {"1", "2"}
    report = (out / "comparison.md").read_text()
    assert "**1 run(s) failed** and have no score: broken." in report
    assert "tiny Gaussian actor, stated in the run file" in report
    assert_is_a_real_figure(out / "comparison.png")


def test_runs_on_different_samples_are_not_ranked_and_the_report_says_why(offline_assets, tmp_path):
    sweep_file = write_sweep(
        tmp_path / "sweep.yaml",
        [
            {"name": "first", "policy_type": "tdmpc", "tiny": True, "args": ["--dataset.episodes=[0,1,2]"]},
            {"name": "last", "policy_type": "tdmpc", "tiny": True, "args": ["--dataset.episodes=[1,2,3]"]},
        ],
    )
    out = tmp_path / "out"
    done = sweep(str(sweep_file), f"--offline_assets={offline_assets}", f"--output_dir={out}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = (out / "comparison.md").read_text()
    assert "**Not ranked.**" in report and "The runs scored different samples" in report
    assert set(comparison_rows(out, "Run")) == {"first", "last"}
    assert json.loads((out / "sweep.json").read_text())["not_ranked_because"]


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing interpreter", "give --python=PATH"),
        ("missing file", "No such sweep or run file"),
        ("unknown key", "unknown keys ['polcy_type']"),
        ("run overrides the common samples", "every run must see the same samples"),
    ],
)
def test_bad_input_exits_2_with_what_to_do_before_anything_runs(case, message, tmp_path):
    runs = [
        {"name": "pi0", "policy_type": "pi0", "tiny": True},
        {"name": "tdmpc", "policy_type": "tdmpc", "tiny": True},
    ]
    args = [f"--offline_assets={tmp_path / 'assets'}", f"--output_dir={tmp_path / 'out'}"]
    sweep_file = write_sweep(tmp_path / "sweep.yaml", runs)
    if case == "missing interpreter":
        args.append(f"--python={tmp_path / 'no_venv' / 'bin' / 'python'}")
    elif case == "missing file":
        sweep_file = tmp_path / "absent.yaml"
    elif case == "unknown key":
        write_sweep(sweep_file, [{"name": "act", "polcy_type": "act"}, *runs])
    else:
        write_sweep(sweep_file, [{**runs[1], "args": ["--cknna.k=7"]}, {**runs[1], "name": "tdmpc2"}])
    done = sweep(str(sweep_file), *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "assets").exists()
