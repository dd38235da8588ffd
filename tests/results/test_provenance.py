import json

from lerobot_cknna.results.provenance import weights_provenance, write_provenance


def test_declared_weights_win_and_no_checkpoint_means_random(tmp_path):
    assert weights_provenance(str(tmp_path), "other domain", "libero")["weights"] == "other domain"
    assert weights_provenance(None, None, "libero")["weights"] == "random"


def test_training_dataset_decides_target_or_other_domain(tmp_path):
    (tmp_path / "train_config.json").write_text(json.dumps({"dataset": {"repo_id": "HuggingFaceVLA/libero"}}))
    same = weights_provenance(str(tmp_path), None, "libero")
    assert same["weights"] == "finetuned on target" and "HuggingFaceVLA/libero" in same["weights_note"]
    (tmp_path / "train_config.json").write_text(json.dumps({"dataset": {"repo_id": "lerobot/pusht"}}))
    assert weights_provenance(str(tmp_path), None, "libero")["weights"] == "other domain"


def test_written_provenance_is_read_back_and_silence_is_unstated(tmp_path):
    assert weights_provenance(str(tmp_path), None, "libero")["weights"] == "unstated"
    write_provenance(tmp_path, "random", "tiny build")
    assert weights_provenance(str(tmp_path), None, "libero") == {
        "weights": "random",
        "weights_note": "tiny build",
    }
