"""The permutation null and the jackknife written directly: a graph search per pairing and per group.

This is how :func:`lerobot_cknna.metrics.statistics.assess` computed them before it read
them off the observed graphs (:mod:`lerobot_cknna.metrics.permutation`,
:mod:`lerobot_cknna.metrics.jackknife`). It stays as the reference those are tested and
benchmarked against: ``assess(..., estimators=REFERENCE_ESTIMATORS)``.
"""

import numpy as np
import torch

from lerobot_cknna.metrics.alignment import (
    UndefinedAlignmentError,
    cknna_from_graphs,
    mutual_knn_from_graphs,
    order_metrics_from_graphs,
    svcca,
)
from lerobot_cknna.metrics.knn import knn_graph
from lerobot_cknna.metrics.observed import Observed
from lerobot_cknna.metrics.statistics import Estimators, _scores


def null_samples(observed: Observed, pairings: list[torch.Tensor]) -> tuple[dict[str, np.ndarray], int]:
    """Metric values (metric -> (n_pairings, len(ks))) under each pairing; NaN where undefined.

    Feat B's graph is searched again for every pairing; ``observed.graph_b`` is not used.
    """
    graph_a, b, ks, exclusion, eps = (
        observed.graph_a,
        observed.b,
        observed.ks,
        observed.exclusion,
        observed.eps,
    )
    values = observed.empty_values(len(pairings))
    undefined = 0
    for row, sigma in enumerate(pairings):
        paired_b = knn_graph(b[sigma.to(b.device)], max(ks), exclusion)
        for metric in observed.order_metrics:
            values[metric][row] = [
                result.value for result in order_metrics_from_graphs(metric, graph_a, paired_b, ks)
            ]
        if "svcca" in observed.metrics:
            values["svcca"][row, 0] = svcca(observed.a, b[sigma.to(b.device)]).value
        for col, k in enumerate(ks):
            values["mutual_knn"][row, col] = mutual_knn_from_graphs(graph_a, paired_b, k).value
            try:
                values["cknna"][row, col] = cknna_from_graphs(graph_a, paired_b, k, eps).value
            except UndefinedAlignmentError:
                undefined += 1
    return values, undefined


def jackknife_estimates(observed: Observed, groups: list[torch.Tensor]) -> dict[str, np.ndarray]:
    """Each metric (metric -> (n_groups, len(ks))) with each group left out, both graphs searched again.

    The observed graphs are not used.
    """
    a, b, ks, exclusion, eps = observed.a, observed.b, observed.ks, observed.exclusion, observed.eps
    estimates = observed.empty_values(len(groups))
    for g, dropped in enumerate(groups):
        keep = torch.ones(a.shape[0], dtype=torch.bool)
        keep[dropped] = False
        rows = keep.nonzero()[:, 0]
        sub_exclusion = None if exclusion is None else exclusion.subset(rows)
        sub_a = knn_graph(a[rows], max(ks), sub_exclusion)
        sub_b = knn_graph(b[rows], max(ks), sub_exclusion)
        for metric, results in _scores(sub_a, sub_b, ks, sub_exclusion, eps, observed.metrics).items():
            estimates[metric][g] = [result.value for result in results]
        if "svcca" in observed.metrics:
            estimates["svcca"][g, 0] = svcca(a[rows], b[rows]).value
    return estimates


def null_samples_of_sets(
    sets: list[Observed], pairings: list[torch.Tensor]
) -> list[tuple[dict[str, np.ndarray], int]]:
    """:func:`null_samples` of each set on its own: nothing is shared."""
    return [null_samples(observed, pairings) for observed in sets]


REFERENCE_ESTIMATORS = Estimators(
    null_samples_of_sets, jackknife_estimates, spare_a=lambda k_max: 0, spare_b=lambda k_max: 0
)
