"""Features of the layer taps, streamed to disk beside the run's own.

Layer ``NN`` of the sweep (shallow to deep, the hooked module last) gets ``layers/NN/``, a run
directory of its own (:mod:`lerobot_cknna.results.feature_sets`): that layer's vectors as
``feat_a``, the run's state, episode, frame and task beside them, so any single layer can also be
scored with ``lerobot-cknna-score DIR/layers/NN``. ``layers/taps.json`` names each layer's module
and how it was read.
"""

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from lerobot_cknna.capture.hook_table import LayerTap
from lerobot_cknna.results.feature_sets import BufferSet
from lerobot_cknna.results.features_io import SavedFeatures, load_features
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


class LayerBuffers(BufferSet):
    """One buffer per layer of the sweep, under ``run_dir/layers/``."""

    def __init__(self, run_dir: Path, taps: list[LayerTap], flush_every_s: float = 30.0):
        """Start empty buffers for ``taps`` under ``run_dir/layers/`` and write ``taps.json``.

        Raises:
            ValueError: a layer directory already holds an earlier run's samples.
        """
        directory = Path(run_dir) / LAYERS_DIR
        keys = {tap.path: layer_directory(run_dir, index).name for index, tap in enumerate(taps)}
        super().__init__(directory, keys, taps[-1].path, {"with_layers": True}, flush_every_s)
        self.taps = taps
        text = json.dumps([dataclasses.asdict(tap) for tap in taps], indent=2)
        write_text_atomic(directory / TAPS_FILE, text)

    def features(self) -> list[LayerFeatures]:
        """Every layer with its samples so far, shallow to deep."""
        return [
            LayerFeatures(index, tap, features)
            for index, (tap, features) in enumerate(zip(self.taps, self.saved_features(), strict=True))
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
