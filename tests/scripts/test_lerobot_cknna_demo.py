"""``make demo``'s command, as the README gives it: the embedded default, offline, end to end."""

import json
from pathlib import Path

import pytest

from tests.utils import console_script


@pytest.mark.slow(155)
def test_the_demo_runs_a_simulation_and_a_replay_offline_and_says_where_the_reports_are(tmp_path):
    done = console_script(
        "lerobot-cknna-demo", f"--output_root={tmp_path}", "--episodes=3", "--episode_length=6", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reports = dict(line.split(": ", 1) for line in done.stdout.splitlines() if line.endswith("report.md"))
    assert set(reports) == {"Simulation report", "Replay report"}
    records = {
        name: json.loads((Path(path.strip()).parent / "cknna.json").read_text())
        for name, path in reports.items()
    }
    assert {record["source"]["mode"] for record in records.values()} == {"simulation", "replay"}
    assert all(record["source"]["policy_type"] == "smolvla" for record in records.values())
    assert all(record["source"]["weights"] == "random" for record in records.values())
    assert records["Simulation report"]["n"] == 3 * 6  # n_action_steps=1: a sample per env step
    assert "random weights" in done.stdout
