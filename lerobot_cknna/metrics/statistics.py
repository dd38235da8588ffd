"""What a careful reader needs around an alignment score: nulls, intervals, scores over k.

Robot data comes in trajectories. Consecutive frames are near-duplicates, so a sample's
nearest neighbours are mostly frames of its own episode, and any two smooth signals
recorded along the same episodes look aligned. Statistics that treat frames as
independent are therefore badly wrong here:

* A row permutation null breaks the trajectories of feat B but not those of feat A, so
  two independent random walks come out "significant". The null here permutes which
  episode's feat B is paired with which episode's feat A, keeping every trajectory
  intact. Episodes of different lengths are paired by relative time (frame ``t`` of an
  ``n``-frame episode takes frame ``round(t (m - 1) / (n - 1))`` of its ``m``-frame
  partner). When the episode orderings other than the observed one number at most
  ``n_permutations``, every one of them is enumerated and the p-value is exact.
* Chance is far from 0 when k/N is large, so a value is read against its null: the
  calibrated score and the p-value of :mod:`lerobot_cknna.metrics.calibration`.
* Resampling rows with replacement turns duplicates into mutual nearest neighbours and
  inflates every kNN metric; resampling episodes with replacement does the same with
  whole trajectories. The interval here is a delete-a-group jackknife over episodes
  (at most ``max_groups`` groups), which never duplicates a sample.
"""

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from scipy import stats as scipy_stats

from lerobot_cknna.metrics.alignment import (
    DEFAULT_METRICS,
    REFERENCE_EPS,
    AlignmentResult,
    centring_warnings,
    check_metric_names,
    check_pair,
    cknna_from_graphs,
    mutual_knn_from_graphs,
    order_metrics_from_graphs,
    svcca,
)
from lerobot_cknna.metrics.calibration import calibrate
from lerobot_cknna.metrics.jackknife import jackknife_estimates, jackknife_groups
from lerobot_cknna.metrics.knn import NeighborExclusion, NeighborGraph, admissible_counts, knn_graph
from lerobot_cknna.metrics.observed import Observed
from lerobot_cknna.metrics.permutation import null_samples_of_sets


@dataclass(frozen=True)
class Estimators:
    """How :func:`assess` computes the null and the jackknife.

    Attributes:
        null_samples_of_sets: ``(sets, pairings) -> [(values, undefined) per set]``, see
            :func:`lerobot_cknna.metrics.permutation.null_samples_of_sets`.
        jackknife_estimates: ``(observed, groups) -> estimates``, see
            :func:`lerobot_cknna.metrics.jackknife.jackknife_estimates`.
        spare_a: ``max(ks) -> n``: feat A's graph keeps ``n`` neighbours beyond ``max(ks)``
            (where the data has them), which the jackknife reads instead of searching again.
        spare_b: the same for feat B's graph, which the null reads too.
    """

    null_samples_of_sets: Callable
    jackknife_estimates: Callable
    spare_a: Callable[[int], int]
    spare_b: Callable[[int], int]


# Feat A: a kept sample is searched again only when a left-out group held a third of its list
# (every spare neighbour costs each sample a float64 product at feat A's width). Feat B: twice
# max(ks), so that the null reads tie groups at max(ks) and unequal pairings off it too.
FAST_ESTIMATORS = Estimators(
    null_samples_of_sets, jackknife_estimates, spare_a=lambda k_max: k_max // 2, spare_b=lambda k_max: k_max
)


@dataclass
class PermutationNull:
    """Distribution of a metric when the pairing of feat A and feat B is broken, and the value read against it.

    ``threshold``, ``calibrated`` and ``p_value`` are those of ``calibrated_similarity.calibrate``
    (:mod:`lerobot_cknna.metrics.calibration`) over the observed value and ``samples``.

    Attributes:
        unit: ``"episode"`` (trajectories kept whole) or ``"row"`` (for comparison only;
            wrong for trajectories).
        samples: the metric under each permuted pairing, in draw order, undefined ones left out.
        left_out: draw indices of the pairings whose metric was undefined (left out of ``samples``).
        mean: null mean; far from 0 when k/N is large.
        std: null standard deviation.
        alpha: level of ``threshold``.
        threshold: the ``ceil((1 - alpha)(K + 1))``-th smallest of the value and its K samples.
        calibrated: ``clamp((value - threshold) / (1 - threshold), 0, 1)``: 0 for what chance
            reaches at level ``alpha``, 1 at identical neighbourhoods.
        p_value: one-sided, ``(1 + #{samples >= value}) / (K + 1)``.
        exact: every ordering of the episodes was enumerated (the observed one is the (K+1)-th),
            so ``p_value`` is the exact permutation p-value.
        chance_corrected: ``(value - mean) / (1 - mean)``, 0 at the null mean; it grows without
            bound as the mean nears 1, so it is not the score to lead with. ``None`` when the mean is 1.
        z: ``(value - mean) / std``; ``None`` when the null has no spread.
    """

    unit: str
    samples: list[float]
    left_out: list[int]
    mean: float
    std: float
    alpha: float
    threshold: float
    calibrated: float
    p_value: float
    exact: bool
    chance_corrected: float | None
    z: float | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Interval:
    """A confidence interval from resampling whole episodes."""

    low: float
    high: float
    level: float
    standard_error: float
    method: str
    groups: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Assessment:
    """One metric at one k with everything needed to read it."""

    result: AlignmentResult
    null: PermutationNull | None = None
    interval: Interval | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def value(self) -> float:
        return self.result.value

    def to_dict(self) -> dict:
        out = self.result.to_dict()
        out["warnings"] = self.result.warnings + self.warnings
        out["null"] = None if self.null is None else self.null.to_dict()
        out["interval"] = None if self.interval is None else self.interval.to_dict()
        return out


def _episode_rows(episode_index: torch.Tensor, frame_index: torch.Tensor | None) -> list[torch.Tensor]:
    """Row indices of each episode (sorted episode ids), each ordered by frame."""
    order_key = frame_index if frame_index is not None else torch.arange(len(episode_index))
    groups = []
    for episode in torch.unique(episode_index):
        rows = (episode_index == episode).nonzero()[:, 0]
        groups.append(rows[torch.argsort(order_key[rows], stable=True)])
    return groups


def episode_pairing(episodes: list[torch.Tensor], n: int, permutation: tuple[int, ...]) -> torch.Tensor:
    """Row map ``sigma``: sample ``i`` is paired with feat B of sample ``sigma[i]``.

    Episode ``e`` takes the frames of episode ``permutation[e]`` at the same relative time.
    """
    sigma = torch.empty(n, dtype=torch.long)
    for rows, partner in zip(episodes, (episodes[p] for p in permutation), strict=True):
        if len(rows) == 1:
            positions = torch.zeros(1, dtype=torch.long)
        else:
            positions = torch.round(torch.arange(len(rows)) * (len(partner) - 1) / (len(rows) - 1)).long()
        sigma[rows] = partner[positions]
    return sigma


def _scores(
    graph_a, graph_b, ks, exclusion, eps, metrics=DEFAULT_METRICS, self_terms=None
) -> dict[str, list[AlignmentResult]]:
    """Every selected neighbour metric at every k (SVCCA, which needs the features, is not among them).

    ``self_terms``: ``kk`` and ``ll`` at every k where already known (:attr:`Observed.self_terms`).
    """
    per_k = [None] * len(ks) if self_terms is None else list(zip(*self_terms, strict=True))
    scores = {
        "cknna": [
            cknna_from_graphs(graph_a, graph_b, k, eps, exclusion, terms)
            for k, terms in zip(ks, per_k, strict=True)
        ],
        "mutual_knn": [mutual_knn_from_graphs(graph_a, graph_b, k) for k in ks],
    }
    for metric in metrics:
        if metric not in scores and metric != "svcca":
            scores[metric] = order_metrics_from_graphs(metric, graph_a, graph_b, ks, exclusion)
    return scores


def _summarize_null(
    unit: str, observed: float, draws: np.ndarray, exact: bool, alpha: float
) -> PermutationNull:
    defined = np.isfinite(draws)
    samples = draws[defined]
    if len(samples) == 0:
        raise ValueError(
            "Every permuted pairing gave an undefined CKNNA, so there is no null. Increase k or "
            "use prep 'center_l2'."
        )
    mean, std = float(samples.mean()), float(samples.std(ddof=1)) if len(samples) > 1 else 0.0
    return PermutationNull(
        unit=unit,
        samples=samples.tolist(),
        left_out=np.flatnonzero(~defined).tolist(),
        mean=mean,
        std=std,
        alpha=alpha,
        **calibrate(observed, samples, alpha).to_dict(),
        exact=exact,
        chance_corrected=(observed - mean) / (1 - mean) if mean != 1 else None,
        z=(observed - mean) / std if std > 0 else None,
    )


def _pairings(unit, episodes, n, n_permutations, rng) -> tuple[list[torch.Tensor], bool]:
    if unit == "row":
        return [torch.from_numpy(rng.permutation(n)) for _ in range(n_permutations)], False
    n_episodes = len(episodes)
    if math.factorial(n_episodes) - 1 <= n_permutations:
        # Every ordering but the identity, which is the observed pairing.
        orders = list(itertools.permutations(range(n_episodes)))[1:]
        return [episode_pairing(episodes, n, order) for order in orders], True
    orders = [tuple(rng.permutation(n_episodes).tolist()) for _ in range(n_permutations)]
    return [episode_pairing(episodes, n, order) for order in orders], False


def _intervals(
    estimates: dict[str, np.ndarray], observed: dict[str, list[AlignmentResult]], level: float
) -> dict[str, list[Interval]]:
    """Jackknife intervals around the observed values from the leave-a-group-out estimates."""
    intervals = {}
    for metric, full in observed.items():
        n_groups = len(estimates[metric])
        t = scipy_stats.t.ppf(0.5 + level / 2, df=n_groups - 1)
        spread = estimates[metric] - estimates[metric].mean(axis=0)
        se = np.sqrt((n_groups - 1) / n_groups * (spread**2).sum(axis=0))
        intervals[metric] = [
            Interval(
                low=result.value - t * s,
                high=result.value + t * s,
                level=level,
                standard_error=float(s),
                method="delete-a-group jackknife over episodes",
                groups=n_groups,
            )
            for result, s in zip(full, se, strict=True)
        ]
    return intervals


def _graph(feats: torch.Tensor, k_max: int, exclusion, spare: int) -> NeighborGraph:
    """The graph with ``spare`` neighbours beyond ``k_max`` where every sample has them."""
    most = int(admissible_counts(feats.shape[0], exclusion, feats.device).min())
    return knn_graph(feats, max(k_max, min(k_max + spare, most)), exclusion)


def assess(
    feats_a,
    feats_b,
    ks: tuple[int, ...] = (10,),
    *,
    episode_index=None,
    frame_index=None,
    exclusion: NeighborExclusion | None = None,
    n_permutations: int = 0,
    null_unit: str = "episode",
    interval_level: float | None = None,
    max_groups: int = 20,
    eps: float = REFERENCE_EPS,
    seed: int = 0,
    alpha: float = 0.05,
    estimators: Estimators = FAST_ESTIMATORS,
    metrics: tuple[str, ...] = DEFAULT_METRICS,
) -> dict[str, list[Assessment]]:
    """CKNNA, mutual kNN and any other selected metric at every k in ``ks``, with nulls and intervals that respect episodes.

    The neighbour graphs are built once at ``max(ks)``; each smaller k reads a prefix.

    Args:
        feats_a: (N, d_a) prepared features.
        feats_b: (N, d_b) prepared features of the same samples.
        ks: neighbourhood sizes to report (scores over k).
        episode_index: (N,) episode of each sample; needed for episode nulls and intervals.
        frame_index: (N,) frame of each sample; orders frames within an episode.
        exclusion: neighbours to exclude besides self.
        n_permutations: permutation-null draws (0: no null).
        null_unit: ``"episode"`` (right for trajectories) or ``"row"`` (for comparison).
        interval_level: e.g. 0.95 for a jackknife interval over episodes; ``None``: none.
        max_groups: at most this many jackknife groups (episodes are dealt round-robin).
        eps: denominator constant of CKNNA.
        seed: seed of the permutation draws; the same seed and episodes give the same pairings in
            the same order, whatever the features.
        alpha: level of the null's threshold and calibrated score.
        estimators: how the null and the jackknife are computed; the default reads them off
            the observed graphs, exactly (``lerobot_cknna.testing.reference_statistics`` has
            the direct loops it is tested against).
        metrics: what to report, from :data:`lerobot_cknna.metrics.alignment.ALIGNMENT_METRICS`;
            must keep cknna and mutual_knn.

    Returns:
        ``{"cknna": [...], "mutual_knn": [...], ...}``, one :class:`Assessment` per k; SVCCA,
        which has no k, has a single one (``result.k`` is ``None``).

    Raises:
        ValueError: bad input, or a requested statistic that the data cannot support.

    Example:
        >>> import torch
        >>> from lerobot_cknna import assess
        >>> _ = torch.manual_seed(0)
        >>> episode = torch.arange(8).repeat_interleave(25)  # 8 trajectories of 25 frames
        >>> state = torch.randn(8, 25, 8).cumsum(dim=1).reshape(200, 8)
        >>> out = assess(state, state, ks=(5, 10), episode_index=episode, n_permutations=20, interval_level=0.95)
        >>> cknna_at_10 = out["cknna"][1]
        >>> round(cknna_at_10.value, 3), round(cknna_at_10.null.p_value, 3), cknna_at_10.interval is not None
        (1.0, 0.048, True)
    """
    (assessed,) = assess_sets(
        [feats_a], feats_b, ks, episode_index=episode_index, frame_index=frame_index, exclusion=exclusion,
        n_permutations=n_permutations, null_unit=null_unit, interval_level=interval_level,
        max_groups=max_groups, eps=eps, seed=seed, alpha=alpha, estimators=estimators, metrics=metrics,
    )  # fmt: skip
    return assessed


def _attach_null(
    out: dict[str, list[Assessment]], samples: dict[str, np.ndarray], undefined: int, unit: str, exact: bool,
    n_pairings: int, alpha: float,
) -> None:  # fmt: skip
    """Give every assessment of one feature set its null, and the warnings the null calls for."""
    for metric in out:
        for col, assessment in enumerate(out[metric]):
            assessment.null = _summarize_null(unit, assessment.value, samples[metric][:, col], exact, alpha)
            if unit == "row":
                assessment.warnings.append(
                    "Row-permutation null: it ignores trajectories and overstates significance."
                )
            if abs(assessment.null.mean) > 0.1:
                assessment.warnings.append(
                    f"The null mean is {assessment.null.mean:.2f}, far from 0: compare against the "
                    "null (calibrated score), not against 0."
                )
            if exact and n_pairings + 1 < 20:
                assessment.warnings.append(
                    f"Only {n_pairings + 1} episode orderings exist: the smallest attainable p-value "
                    f"is {1 / (n_pairings + 1):.2g}. Record more episodes for a meaningful test."
                )
    if undefined:
        for assessment in out["cknna"]:
            assessment.warnings.append(
                f"{undefined} permuted pairings gave an undefined CKNNA and were left out of the null."
            )


def assess_sets(
    feats_as: Sequence,
    feats_b,
    ks: tuple[int, ...] = (10,),
    *,
    episode_index=None,
    frame_index=None,
    exclusion: NeighborExclusion | None = None,
    n_permutations: int = 0,
    null_unit: str = "episode",
    interval_level: float | None = None,
    max_groups: int = 20,
    eps: float = REFERENCE_EPS,
    seed: int = 0,
    alpha: float = 0.05,
    estimators: Estimators = FAST_ESTIMATORS,
    metrics: tuple[str, ...] = DEFAULT_METRICS,
) -> list[dict[str, list[Assessment]]]:
    """:func:`assess` of several feat A sets of the same samples against one feat B, sharing feat B's work.

    Feat B's graph is built once, and under each pairing of the null its side is built once
    for all sets (:func:`lerobot_cknna.metrics.permutation.null_samples_of_sets`); every set's
    null draws the same pairings in the same order and gets the numbers :func:`assess` gives it
    alone. For a layer sweep or token groups.

    Args:
        feats_as: the (N, d_i) prepared feat A sets.
        feats_b: (N, d_b) prepared feat B of the same samples.
        ks: as for :func:`assess`.
        episode_index: as for :func:`assess`.
        frame_index: as for :func:`assess`.
        exclusion: as for :func:`assess`.
        n_permutations: as for :func:`assess`.
        null_unit: as for :func:`assess`.
        interval_level: as for :func:`assess`.
        max_groups: as for :func:`assess`.
        eps: as for :func:`assess`.
        seed: as for :func:`assess`; every set's null draws the same pairings.
        alpha: as for :func:`assess`.
        estimators: as for :func:`assess`.
        metrics: as for :func:`assess`.

    Returns:
        Per set, what :func:`assess` returns.

    Raises:
        ValueError: bad input (no set, a set of other N), or a statistic the data cannot support.
    """
    ks = tuple(sorted(set(ks)))
    check_metric_names(metrics)
    if not feats_as:
        raise ValueError("Give at least one feat A set to assess.")
    checked = [check_pair(feats_a, feats_b, max(ks)) for feats_a in feats_as]
    b = checked[0][1]
    if min(ks) < 2:
        raise ValueError(f"Every k must be >= 2, got {min(ks)}.")
    n = b.shape[0]
    episodes = None
    if episode_index is not None:
        episode_index = torch.as_tensor(episode_index).cpu()
        frame_index = None if frame_index is None else torch.as_tensor(frame_index).cpu()
        if episode_index.shape != (n,):
            raise ValueError(
                f"episode_index must have one entry per sample ({n}), got {tuple(episode_index.shape)}."
            )
        episodes = _episode_rows(episode_index, frame_index)
    if null_unit not in ("episode", "row"):
        raise ValueError(f"null_unit must be 'episode' or 'row', got {null_unit!r}.")
    needs_episodes = (n_permutations > 0 and null_unit == "episode") or interval_level is not None
    if needs_episodes and (episodes is None or len(episodes) < 2):
        raise ValueError(
            "Episode nulls and intervals need episode_index with at least 2 episodes; "
            "record more episodes, or set n_permutations=0 and interval_level=None."
        )

    statistics = n_permutations > 0 or interval_level is not None
    spare_a, spare_b = (estimators.spare_a(max(ks)), estimators.spare_b(max(ks))) if statistics else (0, 0)
    graph_b = _graph(b, max(ks), exclusion, spare_b)
    data, outs = [], []
    for a, _, _ in checked:
        graph_a = _graph(a, max(ks), exclusion, spare_a)
        data.append(Observed(a, b, graph_a, graph_b, ks, exclusion, eps, tuple(metrics)))
        observed = _scores(graph_a, graph_b, ks, exclusion, eps, metrics, data[-1].self_terms)
        if "svcca" in metrics:
            observed["svcca"] = [svcca(a, b)]
        shared_warnings = centring_warnings(a, b)
        outs.append(
            {
                metric: [Assessment(result, warnings=list(shared_warnings)) for result in results]
                for metric, results in observed.items()
            }
        )

    if n_permutations > 0:
        rng = np.random.default_rng(seed)
        pairings, exact = _pairings(null_unit, episodes, n, n_permutations, rng)
        nulls = estimators.null_samples_of_sets(data, pairings)
        for out, (samples, undefined) in zip(outs, nulls, strict=True):
            _attach_null(out, samples, undefined, null_unit, exact, len(pairings), alpha)

    if interval_level is not None:
        if len(episodes) < 3:
            raise ValueError(
                "A jackknife interval over episodes needs at least 3 episodes; record or select more, "
                "or ask for no interval (interval_level=None; --cknna.interval_level=null)."
            )
        groups = jackknife_groups(episodes, max_groups)
        for out, observed_data in zip(outs, data, strict=True):
            estimates = estimators.jackknife_estimates(observed_data, groups)
            observed = {metric: [assessment.result for assessment in items] for metric, items in out.items()}
            intervals = _intervals(estimates, observed, interval_level)
            for metric in out:
                for assessment, interval in zip(out[metric], intervals[metric], strict=True):
                    assessment.interval = interval
    return outs
