"""``lerobot-cknna-sweep`` end to end, offline: the tiny study of every type, failures, unrankable runs, bad input."""

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lerobot_cknna.results.report import HEADLINE_COLUMNS, MISSING
from lerobot_cknna.study.sweep_spec import load_sweep
from tests.utils import (
    TINY_SIMULATION_STUDY,
    TINY_STUDY,
    assert_is_a_real_figure,
    assert_replayed_every_frame,
    console_script,
    write_sweep,
)


def sweep(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return console_script("lerobot-cknna-sweep", *args, cwd=cwd, timeout=3000)


@pytest.fixture(scope="module")
def offline_assets(tmp_path_factory, libero_dataset):
    """Assets shared by this module's sweeps: the session's recording where the tiny study keeps its own."""
    assets = tmp_path_factory.mktemp("sweep_assets")
    recording = load_sweep(TINY_STUDY).record_libero.directory(assets)
    recording.symlink_to(Path(libero_dataset.root).resolve(), target_is_directory=True)
    return assets


def comparison_rows(out: Path, first_column: str) -> dict[str, list[str]]:
    """The comparison table's rows by run name (ranked tables start with the rank)."""
    lines = (out / "comparison.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_column} |"))
    table = list(itertools.takewhile(lambda line: line.startswith("|"), lines[start:]))
    columns = [cell.strip() for cell in table[0].strip("|").split(" | ")]
    rows = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in table[2:]]
    return {row[columns.index("Run")]: row for row in rows}


@pytest.mark.slow(467)
def test_the_tiny_study_runs_every_type_offline(offline_assets, libero_dataset, tmp_path):
    out = tmp_path / "sweep"
    done = sweep(str(TINY_STUDY), f"--offline_assets={offline_assets}", f"--output_dir={out}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-5000:]
    runs = json.loads((out / "sweep.json").read_text())["runs"]
    assert len(runs) == len(load_sweep(TINY_STUDY).runs) and all(run["succeeded"] for run in runs)
    assert all(run["command"][0] == sys.executable for run in runs)
    pi_log = (out / "logs" / "pi0.stderr.log").read_text()
    assert "is a tiny build (cknna_tiny_build.json)" in pi_log

    rows = comparison_rows(out, "Rank")
    assert sorted(rows) == sorted(run["name"] for run in runs)
    for name, row in rows.items():
        assert len(row) == 2 + len(HEADLINE_COLUMNS), name
        assert all(cell and cell != MISSING for cell in row), (name, row)
    for run in load_sweep(TINY_STUDY).runs:
        assert_replayed_every_frame(out / "runs" / run.name, libero_dataset, run.policy_type)
    records = [json.loads((out / "runs" / name / "cknna.json").read_text()) for name in rows]
    assert len({record["samples_digest"] for record in records}) == 1
    report = (out / "comparison.md").read_text()
    assert "Ranked by calibrated score" in report and "failed" not in report
    assert "CKNNA is not comparable across categories" in report and "## Weights" in report
    assert "Random weights (" in report
    assert_is_a_real_figure(out / "comparison.png")
    layer_rows = [
        line for line in report.split("## Per-layer scores")[1].splitlines() if line.startswith("| ")
    ]
    assert sorted(row.split(" | ")[0].strip("| ") for row in layer_rows[1:]) == sorted(rows)
    assert all((out / "runs" / name / "layers.json").is_file() for name in rows)
    assert_is_a_real_figure(out / "layer_curves.png")


# One LIBERO run per type (18 types in 814 s on 2 cores, 45 s each): past the suite's 20-minute guard.
@pytest.mark.timeout(2400)
@pytest.mark.slow(814)
def test_the_tiny_simulation_study_runs_every_type_in_libero(tmp_path):
    out = tmp_path / "sweep_sim"
    assets = tmp_path / "assets"  # no recording: the simulation makes its own data
    done = sweep(
        str(TINY_SIMULATION_STUDY), f"--offline_assets={assets}", f"--output_dir={out}", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-5000:]
    runs = json.loads((out / "sweep.json").read_text())["runs"]
    assert len(runs) == len(load_sweep(TINY_SIMULATION_STUDY).runs) and all(
        run["succeeded"] for run in runs
    ), [r["name"] for r in runs if not r["succeeded"]]
    parity = {}
    for run in runs:
        record = json.loads((out / "runs" / run["name"] / "cknna.json").read_text())
        source = record["source"]
        assert source["mode"] == "simulation" and source["data"]["suites"] == ["libero_spatial"], run["name"]
        # feat B is LIBERO's own 8-D state for every type, X-VLA's 20-D env state included.
        assert record["feat_b_dim"] == 8 and record["n_episodes"] == 3, run["name"]
        assert source["data"]["pc_success"] is not None
        eval_info = json.loads((out / "runs" / run["name"] / "eval_info.json").read_text())
        assert eval_info["overall"]["n_episodes"] == 3
        parity[run["name"]] = record["replay_parity"]
    # Every type's recorded frames, replayed through the encode-only path, give the simulation's features.
    assert all(p["n"] > 0 and p["missing"] == 0 and p["agrees"] for p in parity.values()), parity
    assert max(p["max_rel_diff_feat_a"] for p in parity.values()) <= 1e-4
    assert max(p["max_abs_diff_feat_b"] for p in parity.values()) == 0.0
    logs = {run["name"]: (out / "logs" / f"{run['name']}.stderr.log").read_text() for run in runs}
    assert "(xvla_env_steps)" in logs["xvla"] and "(action_tokenizer_config)" in logs["pi0_fast"]
    report = (out / "comparison.md").read_text()
    assert "**Not ranked.**" in report and "simulation runs cannot be ranked" in report
    rows = comparison_rows(out, "Run")
    assert sorted(rows) == sorted(run["name"] for run in runs)
    assert all(row[-1].endswith("% of 3 episodes") for row in rows.values()), rows


@pytest.mark.slow(52)
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


@pytest.mark.slow(50)
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

    alone = tmp_path / "alone"
    done = sweep(
        str(sweep_file),
        "--only=last",
        f"--offline_assets={offline_assets}",
        f"--output_dir={alone}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((alone / "sweep.json").read_text())
    assert [run["name"] for run in record["runs"]] == ["last"] and record["runs"][0]["succeeded"]
    assert record["not_ranked_because"] == ["a single run: there is nothing to rank it against"]
    assert not (alone / "comparison.md").exists()
