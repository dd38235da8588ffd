"""From saved features to ``cknna.json``: prep, metrics, nulls, intervals, warnings.

``cknna.json`` (schema_version 3) holds:

* ``source``: where the features came from (policy, hook, weights provenance, data), as
  given by the command that gathered them;
* ``n``, ``n_episodes``, ``feat_a_dim``, ``feat_b_dim``;
* ``samples_digest``: SHA-256 of every sample's episode, frame and state (feat B), taken in
  (episode, frame) order; two runs scored the same samples exactly when their digests match;
* ``feature_prep`` (per side), ``exclusion``, ``eps``, ``k``, ``metrics_device`` (where they ran);
* ``alpha``: the level of every null's threshold (``--cknna.alpha``);
* ``headline``: ``cknna`` and ``mutual_knn`` at ``k``, each with ``value``, the HSIC
  terms, ``null`` and ``interval``. The null holds its ``samples`` (draw order; ``left_out``
  the draws where the metric was undefined), ``mean``, ``std``, ``alpha``, ``exact``, and the
  value read against it as ``calibrated_similarity.calibrate`` reads it
  (:mod:`lerobot_cknna.metrics.calibration`): ``threshold`` (the ``ceil((1 - alpha)(K + 1))``-th
  smallest of the value and its K samples), ``calibrated`` (``clamp((value - threshold) / (1 -
  threshold), 0, 1)``, the score to lead with) and ``p_value`` (``(1 + #{null >= value}) / (K +
  1)``); then ``chance_corrected`` (``(value - mean) / (1 - mean)``) and ``z``;
* ``k_sweep``: the same per k;
* with ``--cknna.metrics`` naming more than cknna and mutual_knn, the others (``cycle_knn``,
  ``lcs_knn``, ``edit_distance_knn``) sit beside them in ``headline`` and ``k_sweep``, with
  their own nulls and intervals; ``svcca`` has no k, so it appears in ``headline`` only
  (``"k": null``, ``components`` = directions kept per side) and not in ``k_sweep``;
* ``task_suites``: the task -> suite mapping the suite breakdown used, or ``None``;
* ``groups``: breakdowns at ``k``, each a list of groups (see :func:`score_groups`):
  ``task`` (needs ``task_index``), ``task_suite`` (needs ``task_index``, ``tasks`` and a
  ``task_suites`` mapping, since nothing in the saved features names the suite) and
  ``outcome`` (``success`` / ``failure`` episodes; needs ``success``). A breakdown is left
  out when its labels are missing;
* ``target``: what feat B is (:mod:`~lerobot_cknna.results.targets`): ``kind`` (``state`` or
  ``trajectory``), ``window``, ``feat_b`` in words (e.g. ``state at t``) and ``n_dropped``, the
  samples left out for lacking it; ``sampling``: ``all`` or ``one_per_episode``
  (:mod:`~lerobot_cknna.results.sampling`). ``n``, the digest and every score are of the
  samples kept;
* ``horizons`` (with ``--cknna.horizons``): one record per horizon h, feat B taken h steps
  later (:mod:`~lerobot_cknna.results.horizons`): ``horizon``, ``feat_b``, ``n_dropped`` and
  the fields of a group record;
* ``n_curve`` (with ``--cknna.n_curve``): one record per size on nested subsets of whole
  episodes (:mod:`~lerobot_cknna.results.sample_size`): ``n_requested`` and the fields of a
  group record (``n`` is the subset's actual size);
* ``token_groups`` (with ``--cknna.token_groups``): the file holding the scores of feat A's image
  tokens and language tokens apart, ``token_groups.json`` (:mod:`~lerobot_cknna.results.token_groups`);
* ``warnings``: everything a reader must know before trusting the numbers.

Schema 2 added ``samples_digest``, ``task_suites`` and ``groups``; every schema 1 key is
unchanged. Schema 3 added ``alpha`` and the null's ``alpha``, ``threshold`` and ``left_out``;
the null's ``calibrated`` is now the threshold-calibrated score above, and schema 2's
``calibrated`` (mean-centred) is now ``chance_corrected``; ``p_value`` is ``(1 + #{null >=
value}) / (K + 1)`` for enumerated nulls too, whose K orderings now leave out the observed one
(the p-values are unchanged). ``target``, ``sampling``, ``horizons``, ``n_curve``, the
extra ``--cknna.metrics``, the records' ``components`` and ``token_groups`` came with schema 3 too, as additions
(a reader that does not know them can ignore them).
"""

import hashlib
import logging
import math
from pathlib import Path

import torch

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.metrics.knn import NeighborExclusion
from lerobot_cknna.metrics.statistics import assess_sets
from lerobot_cknna.results.features_io import SavedFeatures
from lerobot_cknna.results.sampling import apply_sampling, check_sizes
from lerobot_cknna.results.targets import TargetSamples, build_target
from lerobot_cknna.utils.io import write_json_atomic

SCHEMA_VERSION = 3
RESULTS_FILE = "cknna.json"
OUTCOMES = ("success", "failure")
# At most this many delete-a-group jackknife groups (episodes are dealt round-robin).
JACKKNIFE_GROUPS = 20


def neighbour_limit(features: SavedFeatures, exclusion: NeighborExclusion | None, interval: bool) -> int:
    """The largest k that every sample can use, in the full data and in every jackknife subset.

    A sample's candidates are the other samples, less those the neighbour exclusion rules out;
    with an interval, the delete-a-group jackknife (at most :data:`JACKKNIFE_GROUPS` groups of
    whole episodes) leaves a group out, so the largest possible group is subtracted too. That is
    exact without an exclusion and errs on the safe side with one.
    """
    n = features.feat_a.shape[0]
    limit = n - 1 if exclusion is None else int(exclusion.admissible_counts().min())
    if interval:
        sizes = torch.unique(features.episode_index, return_counts=True)[1].sort(descending=True).values
        episodes_per_group = math.ceil(len(sizes) / min(len(sizes), JACKKNIFE_GROUPS))
        limit -= int(sizes[:episodes_per_group].sum())
    return limit


def usable_ks(cfg: CKNNAConfig, n: int, limit: int | None = None) -> tuple[list[int], list[str]]:
    """The headline k and the sweep values that fit, and a warning per dropped value.

    Args:
        cfg: the options, with ``k`` and ``k_sweep``.
        n: number of samples.
        limit: the largest k every sample can use (see :func:`neighbour_limit`); default ``n - 1``.

    Raises:
        ValueError: when the headline k does not fit.
    """
    limit = n - 1 if limit is None else limit
    if cfg.k > limit:
        why = (
            ""
            if limit == n - 1
            else " once the neighbour exclusion and the jackknife's left-out episodes count"
        )
        raise ValueError(
            f"--cknna.k={cfg.k} needs {cfg.k} neighbours per sample but some of the {n} samples have only "
            f"{max(limit, 0)}{why}. Gather more (more episodes or frames) or lower --cknna.k."
        )
    ks = sorted({cfg.k, *(k for k in cfg.k_sweep if 2 <= k <= limit)})
    dropped = sorted(set(cfg.k_sweep) - set(ks))
    notes = (
        [
            f"k values {dropped} dropped from --cknna.k_sweep: some samples have only {limit} usable neighbours."
        ]
        if dropped
        else []
    )
    return ks, notes


def samples_digest(features: SavedFeatures) -> str:
    """SHA-256 of every sample's episode, frame and state, in (episode, frame) order.

    Two runs with the same digest scored the same samples, whatever order they were gathered in,
    so their scores can be ranked against each other.
    """
    order = torch.argsort(features.frame_index, stable=True)
    order = order[torch.argsort(features.episode_index[order], stable=True)]
    digest = hashlib.sha256()
    for tensor, dtype in (
        (features.episode_index, torch.int64),
        (features.frame_index, torch.int64),
        (features.feat_b, torch.float32),
    ):
        digest.update(tensor[order].to(dtype).contiguous().numpy().tobytes())
    return digest.hexdigest()


def assess_records(
    features: SavedFeatures,
    cfg: CKNNAConfig,
    ks: list[int],
    exclusion: NeighborExclusion | None,
    n_permutations: int,
    interval_level: float | None,
) -> dict[str, list[dict]]:
    """Prep both sides as ``cfg`` says and assess them: ``{metric: [record per k]}``.

    Args:
        features: the paired samples.
        cfg: the options (feature prep, null unit, eps, seed, alpha).
        ks: neighbourhood sizes to assess.
        exclusion: the neighbour exclusion over these samples, or ``None``.
        n_permutations: permutation-null draws (0 for none).
        interval_level: level of the jackknife interval, or ``None`` for none.
    """
    (records,) = assess_records_of_sets([features], cfg, ks, exclusion, n_permutations, interval_level)
    return records


def assess_records_of_sets(
    sets: list[SavedFeatures],
    cfg: CKNNAConfig,
    ks: list[int],
    exclusion: NeighborExclusion | None,
    n_permutations: int,
    interval_level: float | None,
) -> list[dict[str, list[dict]]]:
    """:func:`assess_records` of several feat A sets of the same samples, sharing feat B's work.

    Each set's records are those :func:`assess_records` gives it alone
    (:func:`~lerobot_cknna.metrics.statistics.assess_sets`); feat B is the first set's.
    """
    first = sets[0]
    assessed = assess_sets(
        [cfg.feature_prep_a(each.feat_a.double()).to(cfg.metrics_device) for each in sets],
        cfg.feature_prep_b(first.feat_b.double()).to(cfg.metrics_device),
        ks=tuple(ks),
        episode_index=first.episode_index,
        frame_index=first.frame_index,
        exclusion=exclusion,
        n_permutations=n_permutations,
        null_unit=cfg.null_unit,
        interval_level=interval_level,
        max_groups=JACKKNIFE_GROUPS,
        eps=cfg.eps,
        seed=cfg.seed,
        metrics=tuple(cfg.metrics),
        alpha=cfg.alpha,
    )
    return [
        {metric: [item.to_dict() for item in items] for metric, items in each.items()} for each in assessed
    ]


def _task_name(features: SavedFeatures, task_index: int) -> str:
    if features.tasks is not None and 0 <= task_index < len(features.tasks):
        return features.tasks[task_index]
    return f"task {task_index}"


def group_rows(
    features: SavedFeatures, task_suites: dict[str, str] | None = None
) -> dict[str, list[tuple[str, torch.Tensor]]]:
    """The samples of every group of every breakdown the labels allow.

    Args:
        features: the samples, with their optional ``task_index``, ``tasks`` and ``success``.
        task_suites: suite of each task string (e.g. ``{"pick up the black bowl ...": "libero_spatial"}``);
            the saved features do not name suites, so the command that gathered them passes this.

    Returns:
        ``{breakdown: [(group name, row indices), ...]}`` for ``task`` (one group per
        ``task_index``, in index order), ``task_suite`` (sorted by name) and ``outcome``
        (``success`` then ``failure``). An episode counts as a success when any of its samples is
        marked successful (simulation marks the step where the task is done).

    Raises:
        ValueError: if ``task_suites`` is given without task strings, or misses a task.
    """
    breakdowns = {}
    if features.task_index is not None:
        breakdowns["task"] = [
            (_task_name(features, int(task)), (features.task_index == task).nonzero()[:, 0])
            for task in torch.unique(features.task_index)
        ]
    if task_suites is not None:
        if features.task_index is None or features.tasks is None:
            raise ValueError("A task -> suite mapping needs task_index and the task strings (tasks.json).")
        missing = sorted({name for name, _ in breakdowns["task"]} - task_suites.keys())
        if missing:
            raise ValueError(f"The task -> suite mapping has no suite for the tasks {missing}.")
        suite_rows = {}
        for name, rows in breakdowns["task"]:
            suite_rows.setdefault(task_suites[name], []).append(rows)
        breakdowns["task_suite"] = [
            (suite, torch.cat(suite_rows[suite]).sort().values) for suite in sorted(suite_rows)
        ]
    if features.success is not None:
        episodes, episode_of = torch.unique(features.episode_index, return_inverse=True)
        episode_success = torch.zeros(len(episodes), dtype=torch.bool)
        episode_success[episode_of[features.success.bool()]] = True
        succeeded = episode_success[episode_of]
        outcome_rows = {"success": succeeded.nonzero()[:, 0], "failure": (~succeeded).nonzero()[:, 0]}
        breakdowns["outcome"] = [(name, outcome_rows[name]) for name in OUTCOMES if len(outcome_rows[name])]
    return breakdowns


def feasible_statistics(
    features: SavedFeatures, cfg: CKNNAConfig, exclusion: NeighborExclusion | None, what: str
) -> tuple[int, float | None, list[str]]:
    """The null and interval ``cfg`` asks for, less what these samples cannot give, and a note for each loss.

    The episode-permutation null needs 2 episodes, the jackknife over episodes 3, and enough
    samples left without each left-out group for ``cfg.k`` neighbours.

    Returns:
        The number of permutations, the interval level (``None``: no interval) and the notes.
    """
    n_episodes = int(torch.unique(features.episode_index).numel())
    notes = []
    n_permutations, interval_level = cfg.n_permutations, cfg.interval_level
    if n_permutations and n_episodes < 2:
        n_permutations = 0
        notes.append(f"No episode-permutation null: {what} has a single episode.")
    if interval_level is not None and n_episodes < 3:
        interval_level = None
        notes.append(f"No jackknife interval: it needs 3 episodes and {what} has {n_episodes}.")
    elif interval_level is not None and neighbour_limit(features, exclusion, interval=True) < cfg.k:
        interval_level = None
        notes.append(
            f"No jackknife interval: leaving out an episode would leave samples fewer than k={cfg.k}."
        )
    return n_permutations, interval_level, notes


def score_subset(
    features: SavedFeatures,
    cfg: CKNNAConfig,
    exclusion: NeighborExclusion | None,
    only_group: bool = False,
) -> dict:
    """One set of samples scored at ``cfg.k`` as a run of its own: counts, then the metrics or why not.

    The record is ``{"n", "n_episodes", "skipped", "cknna", "mutual_knn"}``: ``skipped`` is
    ``None`` and each metric holds a ``headline``-like record (null and interval as far as the
    samples allow, said in its ``warnings``), or ``skipped`` says why there are no numbers and
    both metrics are ``None``. Breakdown groups, horizons and sample-size points all use it.

    Args:
        features: the samples.
        cfg: the options, as for the headline.
        exclusion: the neighbour exclusion over these samples, or ``None``.
        only_group: the samples are a breakdown's only group (the headline's samples): not scored again.
    """
    n = features.feat_a.shape[0]
    n_episodes = int(torch.unique(features.episode_index).numel())
    record = {"n": n, "n_episodes": n_episodes, "skipped": None} | dict.fromkeys(cfg.metrics)
    limit = neighbour_limit(features, exclusion, interval=False)
    if only_group:
        record["skipped"] = "the only group: the same samples as the headline"
        return record
    if n < 4 or limit < cfg.k:
        rule = "" if exclusion is None else f" under the exclusion '{exclusion.describe()}'"
        record["skipped"] = (
            f"N={n} too small for k={cfg.k}: some samples have only {max(limit, 0)} possible neighbours{rule}"
        )
        return record
    n_permutations, interval_level, notes = feasible_statistics(features, cfg, exclusion, "this group")
    try:
        records = assess_records(features, cfg, [cfg.k], exclusion, n_permutations, interval_level)
    except ValueError as error:
        record["skipped"] = str(error)
        return record
    for metric, (result,) in records.items():
        result["warnings"] = notes + result["warnings"]
        record[metric] = result
    return record


def score_groups(
    features: SavedFeatures, cfg: CKNNAConfig, task_suites: dict[str, str] | None = None
) -> dict[str, list[dict]]:
    """Every metric of ``cfg.metrics`` at ``cfg.k`` for each group of each breakdown of :func:`group_rows`.

    Each group is scored as if it were its own run (feature prep, neighbours, null and
    interval all within the group), with the same options as the headline. A group record
    is ``{"name", "n", "n_episodes", "skipped", "cknna", "mutual_knn", ...}`` (one key per
    metric; task groups add ``task_index``): ``skipped`` is ``None`` and each metric holds
    the same record as a ``headline`` entry, or ``skipped`` says why there are no numbers
    (e.g. ``N=7 too small for k=10``) and every metric is ``None``. Groups with too few episodes for the null or
    the interval keep the value and say so in the metric's ``warnings``.
    """
    exclusion = cfg.exclusion(features.episode_index, features.frame_index)
    groups = {}
    for breakdown, named_rows in group_rows(features, task_suites).items():
        groups[breakdown] = []
        for name, rows in named_rows:
            logging.info(f"Scoring {breakdown} group {name!r} (N={len(rows)})")
            record = {"name": name}
            if breakdown == "task":
                record["task_index"] = int(features.task_index[rows[0]])
            group_exclusion = None if exclusion is None else exclusion.subset(rows)
            record |= score_subset(features.select(rows), cfg, group_exclusion, len(named_rows) == 1)
            groups[breakdown].append(record)
    return groups


def samples_to_score(features: SavedFeatures, cfg: CKNNAConfig, horizon: int = 0) -> TargetSamples:
    """The samples ``cfg`` scores, with feat B ``horizon`` steps ahead.

    Feat B is built as ``--cknna.target`` asks (:func:`~lerobot_cknna.results.targets.build_target`),
    then ``--cknna.sampling`` picks the frames (:func:`~lerobot_cknna.results.sampling.apply_sampling`).

    Raises:
        ValueError: at horizon 0, when the target leaves no sample (a window longer than every episode).
    """
    target = build_target(features, cfg, horizon)
    if horizon == 0 and not len(target.features.feat_a):
        raise ValueError(
            f"No sample has its {target.description} in its episode: every episode is shorter than the "
            "window or has gaps between its frames (a stride, --cknna.max_samples). Lower --cknna.window, "
            "or gather every frame of the episodes."
        )
    target.features = apply_sampling(target.features, cfg)
    return target


def score_features(
    features: SavedFeatures,
    cfg: CKNNAConfig,
    source: dict | None = None,
    task_suites: dict[str, str] | None = None,
) -> dict:
    """Compute every metric ``cfg`` asks for on ``features``; returns the ``cknna.json`` record.

    Args:
        features: the paired samples.
        cfg: the ``--cknna.*`` options.
        source: where the features came from (policy, hook, weights, data), recorded as given.
        task_suites: suite of each task string, for the ``task_suite`` breakdown; see :func:`group_rows`.
    """
    target = samples_to_score(features, cfg)
    features = target.features
    n = features.feat_a.shape[0]
    check_sizes(n, cfg.n_curve)
    exclusion = cfg.exclusion(features.episode_index, features.frame_index)
    n_permutations, interval_level, notes = feasible_statistics(features, cfg, exclusion, "this run")
    if target.n_dropped:
        notes.insert(
            0, f"{target.n_dropped} samples dropped: they have no {target.description} in their episode."
        )
    for note in notes:
        logging.warning(note)
    ks, k_notes = usable_ks(cfg, n, neighbour_limit(features, exclusion, interval_level is not None))
    logging.info(f"Scoring N={n} samples at k={ks} ({n_permutations} permutations)")
    assessed = assess_records(features, cfg, ks, exclusion, n_permutations, interval_level)
    sweep = {metric: records for metric, records in assessed.items() if records[0]["k"] is not None}
    headline = {
        metric: next(r for r in records if r["k"] in (cfg.k, None)) for metric, records in assessed.items()
    }
    headline_warnings = [w for record in headline.values() for w in record["warnings"]]
    warnings = list(dict.fromkeys(notes + k_notes + headline_warnings))
    return {
        "schema_version": SCHEMA_VERSION,
        "source": source or {},
        "n": n,
        "n_episodes": int(torch.unique(features.episode_index).numel()),
        "feat_a_dim": features.feat_a.shape[1],
        "feat_b_dim": features.feat_b.shape[1],
        "samples_digest": samples_digest(features),
        "feature_prep": {"feat_a": cfg.feature_prep_a.describe(), "feat_b": cfg.feature_prep_b.describe()},
        "exclusion": None if exclusion is None else exclusion.describe(),
        "eps": cfg.eps,
        "k": cfg.k,
        "alpha": cfg.alpha,
        "metrics_device": str(cfg.metrics_device),
        "headline": headline,
        "k_sweep": sweep,
        "task_suites": task_suites,
        "target": {
            "kind": cfg.target,
            "window": cfg.window,
            "feat_b": target.description,
            "n_dropped": target.n_dropped,
        },
        "sampling": cfg.sampling,
        "groups": score_groups(features, cfg, task_suites),
        "warnings": warnings,
    }


def write_results(directory: Path, record: dict, file_name: str = RESULTS_FILE) -> Path:
    """Write ``record`` as ``cknna.json`` (or ``file_name``) atomically into ``directory``."""
    path = Path(directory) / file_name
    write_json_atomic(path, record)
    return path


def summary_lines(record: dict) -> list[str]:
    """A few lines a person reads first: calibrated score, value, uncertainty, null, sample size."""
    lines = [
        f"N={record['n']} samples in {record['n_episodes']} episodes, k={record['k']}, "
        f"prep A={record['feature_prep']['feat_a']}, B={record['feature_prep']['feat_b']}"
    ]
    for metric, result in record["headline"].items():
        null = result["null"]
        text = f"  {metric:<10}"
        if null:
            text += (
                f" calibrated {null['calibrated']:.3f} (p={null['p_value']:.3g}, "
                f"threshold {null['threshold']:.4f} at alpha={null['alpha']:g}),"
            )
        text += f" value {result['value']:.4f}"
        if result["interval"]:
            text += f"  [{result['interval']['low']:.4f}, {result['interval']['high']:.4f}]"
            text += f" ({100 * result['interval']['level']:.0f}% jackknife over episodes)"
        if null:
            text += f"  null {null['mean']:.4f} +/- {null['std']:.4f}"
        lines.append(text)
    for breakdown, groups in record.get("groups", {}).items():
        lines.append(f"  by {breakdown.replace('_', ' ')}: {group_summary(groups)}")
    for key, label, field in (("horizons", "horizon h", "horizon"), ("n_curve", "N", "n")):
        if record.get(key):
            values = [f"{item[field]}: {_value_text(item['cknna'])}" for item in record[key]]
            lines.append(f"  CKNNA by {label}: {', '.join(values)}")
    lines += [f"  warning: {note}" for note in record["warnings"]]
    return lines


def _value_text(result: dict | None) -> str:
    return "skipped" if result is None else f"{result['value']:.4f}"


def group_summary(groups: list[dict]) -> str:
    """One line about a breakdown: how many groups were scored, and the lowest and highest CKNNA."""
    scored = sorted((g for g in groups if g["cknna"] is not None), key=lambda g: g["cknna"]["value"])
    text = f"{len(groups)} group{'s' if len(groups) != 1 else ''}, {len(groups) - len(scored)} skipped"
    if scored:
        low, high = scored[0], scored[-1]
        text += f"; CKNNA from {low['cknna']['value']:.4f} ({low['name']!r}, N={low['n']})"
        text += f" to {high['cknna']['value']:.4f} ({high['name']!r}, N={high['n']})"
    return text
