"""Sets of vectors captured in the same forwards as feat A (layer taps, token groups): stored and scored alike.

Each set is a run directory of its own under one directory of the run (``layers/NN/``,
``token_groups/image/``): ``features.safetensors`` (and its streamed chunks) as
:mod:`lerobot_cknna.results.features_io` writes them, with the set's vectors as ``feat_a`` and the
run's state, episode, frame and task beside them, so any one set can also be scored with
``lerobot-cknna-score DIR/layers/NN``. :class:`BufferSet` streams them; :func:`score_sets` scores
them like the headline, every set's null drawing the same pairings in the same order.

Memory: like the run's own buffer, every set's vectors are kept in float32 on the CPU until the
run ends: N x (sum of the set widths) x 4 bytes, e.g. 2000 samples x 19 layers x 2048 (a 18-layer
VLM) = 0.3 GB; chunks on disk follow every ``--cknna.flush_every_s`` seconds.
"""

import logging
from pathlib import Path

import torch

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.features_io import FeatureBuffer, SavedFeatures
from lerobot_cknna.results.scoring import assess_records_of_sets, neighbour_limit, samples_to_score, usable_ks


class BufferSet:
    """One :class:`~lerobot_cknna.results.features_io.FeatureBuffer` per set, each filled from the same captures.

    Attributes:
        feat_a_key: the key of feat A itself in what a capture returns.
        capture: the options of :func:`~lerobot_cknna.capture.hooks.encode_features` that make it
            return every set's key.
    """

    def __init__(
        self,
        directory: Path,
        keys: dict[str, str],
        feat_a_key: str,
        capture: dict[str, bool],
        flush_every_s: float = 30.0,
    ):
        """Start empty buffers, one per set, in ``directory``.

        Args:
            directory: where the sets go, each in a subdirectory of its own.
            keys: per set, its key in what a capture returns -> the name of its subdirectory.
            feat_a_key: see :attr:`feat_a_key`.
            capture: see :attr:`capture`.
            flush_every_s: seconds between writes of each set's samples.

        Raises:
            ValueError: a set's directory already holds an earlier run's samples.
        """
        self.directory = Path(directory)
        self.keys = keys
        self.feat_a_key = feat_a_key
        self.capture = capture
        self._buffers = [FeatureBuffer(self.directory / name, flush_every_s) for name in keys.values()]
        self.directory.mkdir(parents=True, exist_ok=True)

    def add(
        self,
        captured: dict[str, torch.Tensor],
        feat_b: torch.Tensor,
        episode_index: torch.Tensor,
        frame_index: torch.Tensor,
        tasks: list[str] | None = None,
    ) -> None:
        """Append a batch: ``captured`` maps each set's key to its (B, D_set) vectors."""
        for key, buffer in zip(self.keys, self._buffers, strict=True):
            n_tokens = self.n_tokens(captured, key)
            buffer.add(captured[key], feat_b, episode_index, frame_index, tasks=tasks, n_tokens=n_tokens)

    def n_tokens(self, captured: dict[str, torch.Tensor], key: str) -> torch.Tensor | None:
        """The (B,) tokens each sample of the set at ``key`` averages, where the capture counts them; else ``None``."""
        return None

    def flush(self) -> None:
        """Write every set's rows not yet on disk."""
        for buffer in self._buffers:
            buffer.flush()

    def close(self) -> None:
        """Write every set's ``features.safetensors`` and drop its chunks."""
        for buffer in self._buffers:
            buffer.close()

    def saved_features(self) -> list[SavedFeatures]:
        """Every set's samples so far, in the order of ``keys``."""
        return [buffer.features() for buffer in self._buffers]


def check_same_samples(features: list[SavedFeatures], labels: list[str]) -> None:
    """Check that every set holds the samples of the first (episode, frame, state), in the same order.

    Raises:
        ValueError: a set holds other samples (its label says which).
    """
    first = features[0]
    for label, other in zip(labels[1:], features[1:], strict=True):
        if not (
            torch.equal(other.episode_index, first.episode_index)
            and torch.equal(other.frame_index, first.frame_index)
            and torch.equal(other.feat_b, first.feat_b)
        ):
            raise ValueError(
                f"{label[:1].upper()}{label[1:]} holds other samples than {labels[0]}; the sets were not "
                "gathered in one pass (a run killed between two flushes?). Run it again."
            )


def score_sets(
    features: list[SavedFeatures], labels: list[str], cfg: CKNNAConfig, source: dict | None = None
) -> tuple[dict, list[dict]]:
    """CKNNA and mutual kNN at ``cfg.k`` for every set, each scored like the headline.

    The same feat B (``--cknna.target``) and samples (``--cknna.sampling``), feature prep,
    neighbour exclusion, permutation null (the same seed over the same episodes, so the ``j``-th
    null samples of all sets come from one pairing) and jackknife interval, at the headline k only.

    Args:
        features: the sets, holding the same samples.
        labels: what each set is, for the log and errors (e.g. ``layer 3 (model.layers.3)``).
        cfg: the ``--cknna.*`` options, as for the headline.
        source: where the features came from, recorded as given.

    Returns:
        The fields every record of sets shares (``source``, ``n``, ``n_episodes``, ``k``,
        ``feature_prep``, ``exclusion``, ``eps``, ``n_permutations``, ``interval_level``,
        ``alpha``), and per set ``{metric: record}`` as in ``cknna.json``'s ``headline``.

    Raises:
        ValueError: the sets hold different samples, or ``cfg.k`` does not fit them.
    """
    check_same_samples(features, labels)
    samples = [samples_to_score(each, cfg).features for each in features]
    first = samples[0]
    n = first.feat_a.shape[0]
    exclusion = cfg.exclusion(first.episode_index, first.frame_index)
    usable_ks(cfg, n, neighbour_limit(first, exclusion, cfg.interval_level is not None))
    logging.info(f"Scoring {len(samples)} sets against one feat B: {', '.join(labels)}")
    assessed = assess_records_of_sets(
        samples, cfg, [cfg.k], exclusion, cfg.n_permutations, cfg.interval_level
    )
    scored = [{metric: result for metric, (result,) in each.items()} for each in assessed]
    shared = {
        "source": source or {},
        "n": n,
        "n_episodes": int(torch.unique(first.episode_index).numel()),
        "k": cfg.k,
        "feature_prep": {"feat_a": cfg.feature_prep_a.describe(), "feat_b": cfg.feature_prep_b.describe()},
        "exclusion": None if exclusion is None else exclusion.describe(),
        "eps": cfg.eps,
        "n_permutations": cfg.n_permutations,
        "interval_level": cfg.interval_level,
        "alpha": cfg.alpha,
    }
    return shared, scored
