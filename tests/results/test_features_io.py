import json

import pytest
import torch
from safetensors.torch import load_file

from lerobot_cknna.results.features_io import FeatureBuffer, SavedFeatures, load_features, save_features


def test_round_trip_and_plain_safetensors_reader(tmp_path):
    features = SavedFeatures(
        feat_a=torch.randn(6, 4),
        feat_b=torch.randn(6, 8),
        episode_index=torch.tensor([0, 0, 0, 1, 1, 1]),
        frame_index=torch.tensor([0, 1, 2, 0, 1, 2]),
        success=torch.tensor([True] * 3 + [False] * 3),
        task_index=torch.zeros(6, dtype=torch.long),
        tasks=["pick up the black bowl"],
    )
    save_features(tmp_path, features)
    raw = load_file(str(tmp_path / "features.safetensors"))
    assert raw["feat_a"].shape == (6, 4) and raw["feat_b"].dtype == torch.float32
    assert json.loads((tmp_path / "tasks.json").read_text()) == ["pick up the black bowl"]
    back = load_features(tmp_path)
    assert torch.equal(back.feat_a, features.feat_a) and torch.equal(back.success, features.success)
    assert back.tasks == features.tasks
    assert not list(tmp_path.glob(".*.tmp"))


def test_mismatched_rows_and_missing_files_are_explained(tmp_path):
    with pytest.raises(ValueError, match="feat_b has 5 rows but feat_a has 6"):
        SavedFeatures(torch.randn(6, 4), torch.randn(5, 8), torch.zeros(6), torch.zeros(6))
    with pytest.raises(FileNotFoundError, match="No features.safetensors in"):
        load_features(tmp_path)


def test_feature_buffer_keeps_what_was_gathered_on_disk(tmp_path):
    buffer = FeatureBuffer(tmp_path, flush_every_s=0.0)
    assert buffer.flush() is None and not (tmp_path / "features.safetensors").exists()
    buffer.add(
        torch.ones(2, 3), torch.zeros(2, 8), torch.tensor([0, 0]), torch.tensor([0, 1]), tasks=["a", "b"]
    )
    on_disk = load_features(tmp_path)  # flushed by add, since flush_every_s=0
    assert on_disk.feat_a.shape == (2, 3) and on_disk.tasks == ["a", "b"]
    buffer.add(torch.ones(1, 3), torch.zeros(1, 8), torch.tensor([1]), torch.tensor([0]), tasks=["a"])
    buffer.flush()
    again = load_features(tmp_path)
    assert again.task_index.tolist() == [0, 1, 0] and again.episode_index.tolist() == [0, 0, 1]
    assert len(buffer) == 3
    chunks = sorted(path.name for path in (tmp_path / "features.chunks").iterdir())
    assert chunks == ["chunk-000000", "chunk-000001"]  # each flush writes only its new rows
    assert load_features(tmp_path / "features.chunks" / "chunk-000001").feat_a.shape == (1, 3)
    assert buffer.flush() is None
    buffer.close()
    assert not (tmp_path / "features.chunks").exists()
    assert torch.equal(load_features(tmp_path).feat_a, again.feat_a)


def add_rows(buffer: FeatureBuffer, first: int, n: int, task: str) -> None:
    rows = torch.arange(first, first + n)
    buffer.add(rows[:, None].float().repeat(1, 3), torch.zeros(n, 8), rows // 4, rows % 4, tasks=[task] * n)


@pytest.mark.parametrize("finished", [False, True], ids=["killed", "finished"])
def test_a_resumed_buffer_continues_without_duplicating(tmp_path, finished):
    earlier = FeatureBuffer(tmp_path, flush_every_s=1e9)
    add_rows(earlier, 0, 5, "a")
    earlier.flush()
    add_rows(earlier, 5, 2, "b")  # never flushed: lost when the run is killed
    if finished:
        earlier.close()
    resumed = FeatureBuffer(tmp_path, flush_every_s=1e9, resume=True)
    assert len(resumed) == (7 if finished else 5)
    add_rows(resumed, len(resumed), 3, "c")
    resumed.flush()
    on_disk = load_features(tmp_path)
    assert on_disk.feat_a[:, 0].tolist() == list(range(len(resumed)))
    assert [on_disk.tasks[i] for i in on_disk.task_index] == [
        "a" if i < 5 else "b" if finished and i < 7 else "c" for i in range(len(resumed))
    ]
    resumed.close()
    assert torch.equal(load_features(tmp_path).feat_a, on_disk.feat_a)


def test_an_earlier_runs_features_are_never_mixed_in_unasked(tmp_path):
    assert len(FeatureBuffer(tmp_path, resume=True)) == 0
    earlier = FeatureBuffer(tmp_path)
    add_rows(earlier, 0, 4, "a")
    earlier.flush()
    with pytest.raises(ValueError, match="already holds the features of an earlier run.*--resume=true"):
        FeatureBuffer(tmp_path)
