import pytest
import torch

from lerobot_cknna.capture.hook_table import LayerTap
from lerobot_cknna.results.layer_features import LayerBuffers, has_layer_features, load_layer_features

TAPS = [LayerTap("trunk.layers.0.input_layernorm", "input"), LayerTap("trunk.norm")]


def add_batch(buffers: LayerBuffers, start: int, size: int, widths=(6, 4)) -> None:
    rows = torch.arange(start, start + size, dtype=torch.float32)[:, None]
    layers = {
        tap.path: rows * (i + 1) + torch.zeros(size, width)
        for i, (tap, width) in enumerate(zip(TAPS, widths, strict=True))
    }
    episode, frames = torch.zeros(size, dtype=torch.long), torch.arange(start, start + size)
    buffers.add(layers, rows.expand(size, 8), episode, frames, tasks=["stack"] * size)


def test_layers_stream_to_their_own_run_directories_and_load_back(tmp_path):
    buffers = LayerBuffers(tmp_path, TAPS, flush_every_s=0)
    add_batch(buffers, 0, 3)
    assert has_layer_features(tmp_path)
    partial = load_layer_features(tmp_path)  # a killed run's chunks are readable
    assert [len(layer.features.feat_a) for layer in partial] == [3, 3]
    add_batch(buffers, 3, 2)
    buffers.close()
    layers = load_layer_features(tmp_path)
    assert [(layer.index, layer.tap) for layer in layers] == list(enumerate(TAPS))
    assert [layer.features.feat_a.shape for layer in layers] == [(5, 6), (5, 4)]
    torch.testing.assert_close(layers[1].features.feat_a[:, 0], 2 * torch.arange(5.0))
    assert torch.equal(layers[0].features.frame_index, torch.arange(5)) and layers[0].features.tasks == [
        "stack"
    ]
    assert [layer.features.feat_a.shape for layer in buffers.features()] == [(5, 6), (5, 4)]


def test_an_earlier_sweep_is_not_written_into(tmp_path):
    buffers = LayerBuffers(tmp_path, TAPS)
    add_batch(buffers, 0, 2)
    buffers.close()
    with pytest.raises(ValueError, match="already holds the features of an earlier run"):
        LayerBuffers(tmp_path, TAPS)


def test_a_directory_without_a_sweep_says_so(tmp_path):
    assert not has_layer_features(tmp_path)
    with pytest.raises(FileNotFoundError, match="--cknna.layers=true"):
        load_layer_features(tmp_path)
