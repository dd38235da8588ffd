"""What a run captures beside feat A in the same forwards (``--cknna.layers``, ``--cknna.token_groups``).

Replay and simulation make the same buffer sets from the run's options and hand what they
gathered to :func:`~lerobot_cknna.results.publish.publish` alike::

    sets = make_buffer_sets(run_dir, spec, policy, cfg.cknna)   # [] when neither option is set
    ...                                                    # each capture: extra.add(captured, ...)
    publish(run_dir, features, cfg.cknna, source, **published_sets(sets))
"""

from collections.abc import Sequence
from pathlib import Path

from torch import nn

from lerobot_cknna.capture.hook_table import HookSpec, layer_taps
from lerobot_cknna.configs.cknna import CKNNARunConfig
from lerobot_cknna.results.feature_sets import BufferSet
from lerobot_cknna.results.layer_features import LayerBuffers
from lerobot_cknna.results.token_groups import TokenGroupBuffers


def make_buffer_sets(
    run_dir: Path, spec: HookSpec, policy: nn.Module, cfg: CKNNARunConfig
) -> list[BufferSet]:
    """Empty buffers, in ``run_dir``, for the layer taps and token groups ``cfg`` asks for.

    Raises:
        ValueError: ``run_dir`` already holds an earlier run's layers or token groups.
    """
    sets: list[BufferSet] = []
    if cfg.layers:
        sets.append(LayerBuffers(run_dir, layer_taps(spec, policy), cfg.flush_every_s))
    if cfg.token_groups:
        sets.append(TokenGroupBuffers(run_dir, spec, cfg.flush_every_s))
    return sets


def capture_options(sets: Sequence[BufferSet]) -> dict[str, bool]:
    """The options of the capture (:class:`~lerobot_cknna.capture.hooks.FeatureCapture`) that fill ``sets``."""
    return {name: value for extra in sets for name, value in extra.capture.items()}


def published_sets(sets: Sequence[BufferSet]) -> dict:
    """``publish``'s ``layer_features`` and ``token_groups``, from what ``sets`` gathered."""
    published = {}
    for extra in sets:
        if isinstance(extra, LayerBuffers):
            published["layer_features"] = extra.features()
        elif isinstance(extra, TokenGroupBuffers):
            published["token_groups"] = extra.features()
    return published
