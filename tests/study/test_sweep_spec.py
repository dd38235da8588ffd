"""Sweep files checked in-process: what ``lerobot-cknna-sweep`` refuses before anything runs."""

import sys

import pytest

from lerobot_cknna.scripts import lerobot_cknna_sweep
from tests.utils import write_sweep


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing interpreter", "give --python=PATH"),
        ("missing file", "No such sweep or run file"),
        ("unknown key", "unknown keys ['polcy_type']"),
        ("run overrides the common samples", "every run must see the same samples"),
        ("one run in the file", "a sweep compares runs: list at least two"),
    ],
)
def test_bad_input_exits_2_with_what_to_do_before_anything_runs(case, message, tmp_path, monkeypatch, capsys):
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
    elif case == "one run in the file":
        write_sweep(sweep_file, runs[:1])
    elif case == "unknown key":
        write_sweep(sweep_file, [{"name": "act", "polcy_type": "act"}, *runs])
    else:
        write_sweep(sweep_file, [{**runs[1], "args": ["--cknna.k=7"]}, {**runs[1], "name": "tdmpc2"}])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lerobot-cknna-sweep", str(sweep_file), *args])
    with pytest.raises(SystemExit) as exited:
        lerobot_cknna_sweep.main()
    stderr = capsys.readouterr().err
    assert exited.value.code == 2, stderr[-3000:]
    assert message in stderr and "Traceback" not in stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "assets").exists()
