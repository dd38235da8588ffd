import dataclasses

import pytest
import torch

from lerobot_cknna.capture.hook_table import PI05
from lerobot_cknna.capture.hooks import token_group_key
from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.report import write_report
from lerobot_cknna.results.scoring import score_features
from lerobot_cknna.results.token_groups import TokenGroupBuffers, load_token_groups, score_token_groups
from tests.utils import episodic_features, table_rows


def gathered_groups(run_dir, batch_size=25):
    """A run's image tokens (an embedding of the state), language tokens (noise) and feat A (their mean)."""
    features = episodic_features(n_episodes=4, length=15)
    gen = torch.Generator().manual_seed(3)
    image = features.feat_a
    language = torch.randn(image.shape, generator=gen)
    features = dataclasses.replace(features, feat_a=(3 * image + language) / 4)
    buffers = TokenGroupBuffers(run_dir, PI05, flush_every_s=0)
    for start in range(0, len(image), batch_size):
        rows = slice(start, start + batch_size)
        captured = {token_group_key(PI05.module_path, "image"): image[rows]}
        captured[token_group_key(PI05.module_path, "language")] = language[rows]
        buffers.add(captured, features.feat_b[rows], features.episode_index[rows], features.frame_index[rows])
    buffers.close()
    return features, buffers


def test_token_groups_are_scored_like_the_headline_and_reported(tmp_path):
    features, buffers = gathered_groups(tmp_path)
    saved = load_token_groups(tmp_path)
    assert (saved.path, saved.note) == (PI05.module_path, PI05.token_mask.groups_note)
    assert torch.equal(saved.groups["language"].feat_a, buffers.features().groups["language"].feat_a)
    cfg = CKNNAConfig(k=5, k_sweep=[5], n_permutations=10, interval_level=None)
    record = score_token_groups(features, saved, cfg, {"policy_type": "pi05"})
    assert [group["group"] for group in record["groups"]] == ["both", "image", "language"]
    assert record["schema_version"] == 1 and record["n"] == 60 and record["path"] == PI05.module_path
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
    assert row[1] == "32" and row[2] == f"{language['cknna']['null']['calibrated']:.3f}"
    assert table_rows(section, "both (feat A)")[0][4].startswith(f"{both['cknna']['value']:.3f}")


def test_token_groups_of_other_samples_are_refused(tmp_path):
    features, _ = gathered_groups(tmp_path)
    shifted = dataclasses.replace(features, frame_index=features.frame_index + 1)
    with pytest.raises(ValueError, match="holds other samples than token group 'both'"):
        score_token_groups(shifted, load_token_groups(tmp_path), CKNNAConfig(k=5, n_permutations=0))
