import dataclasses

import pytest
import torch

from lerobot_cknna.capture.hook_table import PI05
from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.report import write_report
from lerobot_cknna.results.scoring import score_features
from lerobot_cknna.results.token_groups import load_token_groups, score_token_groups
from tests.utils import gathered_token_groups, table_rows


def test_token_groups_are_scored_like_the_headline_and_reported(tmp_path):
    features, buffers = gathered_token_groups(tmp_path)
    saved = load_token_groups(tmp_path)
    assert (saved.path, saved.note) == (PI05.module_path, PI05.token_mask.groups_note)
    assert torch.equal(saved.groups["language"].feat_a, buffers.features().groups["language"].feat_a)
    cfg = CKNNAConfig(k=5, k_sweep=[5], n_permutations=10, interval_level=None)
    record = score_token_groups(features, saved, cfg, {"policy_type": "pi05"})
    assert [group["group"] for group in record["groups"]] == ["both", "image", "language"]
    assert record["schema_version"] == 2 and record["n"] == 60 and record["path"] == PI05.module_path
    n_language = saved.groups["language"].n_tokens
    assert [group["tokens_per_sample"] for group in record["groups"]] == [
        {
            "min": 30 + int(n_language.min()),
            "mean": 30 + n_language.double().mean().item(),
            "max": 30 + int(n_language.max()),
        },
        {"min": 30, "mean": 30.0, "max": 30},
        {
            "min": int(n_language.min()),
            "mean": n_language.double().mean().item(),
            "max": int(n_language.max()),
        },
    ]
    assert 8 <= n_language.min() < n_language.max() <= 11
    headline = score_features(features, cfg, {"policy_type": "pi05"})
    both, image, language = record["groups"]
    assert both["cknna"] == headline["headline"]["cknna"]
    assert both["mutual_knn"] == headline["headline"]["mutual_knn"]
    assert image["cknna"]["value"] > language["cknna"]["value"]
    assert all(len(group["cknna"]["null"]["samples"]) == 10 for group in record["groups"])
    text = write_report(tmp_path, headline, group_record=record).read_text()
    section = text.split("## Token groups")[1].split("\n## ")[0]
    assert "discretized state as text" in section and "10 permutations" in section
    (row,) = table_rows(section, "language")
    assert row[1] == "32" and row[3] == f"{language['cknna']['null']['calibrated']:.3f}"
    assert (
        row[2] == f"{n_language.double().mean().item():.1f} ({int(n_language.min())}-{int(n_language.max())})"
    )
    assert table_rows(section, "both (feat A)")[0][5].startswith(f"{both['cknna']['value']:.3f}")


def test_token_groups_of_other_samples_are_refused(tmp_path):
    features, _ = gathered_token_groups(tmp_path)
    shifted = dataclasses.replace(features, frame_index=features.frame_index + 1)
    with pytest.raises(ValueError, match="holds other samples than token group 'both'"):
        score_token_groups(shifted, load_token_groups(tmp_path), CKNNAConfig(k=5, n_permutations=0))
