"""Features of the layer taps, streamed to disk beside the run's own.

Layer ``NN`` of the sweep (shallow to deep, the hooked module last) gets ``layers/NN/``, a run
directory of its own: ``features.safetensors`` (and its streamed chunks) as
:mod:`lerobot_cknna.results.features_io` writes them, with that layer's vectors as ``feat_a`` and the
run's state, episode, frame and task beside them, so any single layer can also be scored with
``lerobot-cknna-score DIR/layers/NN``. ``layers/taps.json`` names each layer's module and how it
was read.

Memory: like the run's own buffer, every layer's vectors are kept in float32 on the CPU until
the run ends: N x (sum of the layer widths) x 4 bytes, e.g. 2000 samples x 19 layers x 2048
(a 18-layer VLM) = 0.3 GB; chunks on disk follow every ``--cknna.flush_every_s`` seconds.
"""

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from lerobot_cknna.capture.hook_table import LayerTap
from lerobot_cknna.results.features_io import FeatureBuffer, SavedFeatures, load_features
from lerobot_cknna.utils.io import write_text_atomic

LAYERS_DIR = "layers"
TAPS_FILE = "taps.json"


@dataclass
class LayerFeatures:
    """One layer of the sweep and its samples.

    Attributes:
        index: depth along the path, 0 for the shallowest.
        tap: the module read and how.
        features: the samples, ``feat_a`` holding this layer's vectors.
    """

    index: int
    tap: LayerTap
    features: SavedFeatures


def layer_directory(run_dir: Path, index: int) -> Path:
    """Where layer ``index`` of a run's sweep is stored."""
    return Path(run_dir) / LAYERS_DIR / f"{index:02d}"


class LayerBuffers:
    """One :class:`~lerobot_cknna.features_io.FeatureBuffer` per layer of the sweep."""

    def __init__(self, run_dir: Path, taps: list[LayerTap], flush_every_s: float = 30.0):
        """Start empty buffers for ``taps`` under ``run_dir/layers/`` and write ``taps.json``.

        Raises:
            ValueError: a layer directory already holds an earlier run's samples.
        """
        self.taps = taps
        self._buffers = [FeatureBuffer(layer_directory(run_dir, i), flush_every_s) for i in range(len(taps))]
        directory = Path(run_dir) / LAYERS_DIR
        directory.mkdir(parents=True, exist_ok=True)
        text = json.dumps([dataclasses.asdict(tap) for tap in taps], indent=2)
        write_text_atomic(directory / TAPS_FILE, text)

    def add(
        self,
        layers: dict[str, torch.Tensor],
        feat_b: torch.Tensor,
        episode_index: torch.Tensor,
        frame_index: torch.Tensor,
        tasks: list[str] | None = None,
    ) -> None:
        """Append a batch: ``layers`` maps each tap's module path to its (B, D_layer) vectors."""
        for tap, buffer in zip(self.taps, self._buffers, strict=True):
            buffer.add(layers[tap.path], feat_b, episode_index, frame_index, tasks=tasks)

    def flush(self) -> None:
        """Write every layer's rows not yet on disk."""
        for buffer in self._buffers:
            buffer.flush()

    def close(self) -> None:
        """Write every layer's ``features.safetensors`` and drop its chunks."""
        for buffer in self._buffers:
            buffer.close()

    def features(self) -> list[LayerFeatures]:
        """Every layer with its samples so far, shallow to deep."""
        return [
            LayerFeatures(index, tap, buffer.features())
            for index, (tap, buffer) in enumerate(zip(self.taps, self._buffers, strict=True))
        ]


def has_layer_features(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds layer taps."""
    return (Path(run_dir) / LAYERS_DIR / TAPS_FILE).is_file()


def load_layer_features(run_dir: Path) -> list[LayerFeatures]:
    """Read the layer taps :class:`LayerBuffers` wrote into ``run_dir`` (finished or not).

    Raises:
        FileNotFoundError: ``run_dir`` has no layer taps.
    """
    taps_path = Path(run_dir) / LAYERS_DIR / TAPS_FILE
    if not taps_path.is_file():
        raise FileNotFoundError(
            f"No layer taps in {run_dir} ({taps_path} is missing); run with --cknna.layers=true."
        )
    taps = [LayerTap(**tap) for tap in json.loads(taps_path.read_text())]
    return [
        LayerFeatures(index, tap, load_features(layer_directory(run_dir, index)))
        for index, tap in enumerate(taps)
    ]
