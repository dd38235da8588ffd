"""Inner-product neighbours in few dimensions from a k-d tree, with certified float64 margins.

A k-d tree finds Euclidean neighbours in O(log N) per query when the dimension is small,
where the tiled search of :mod:`lerobot_cknna.metrics.knn` pays O(N) per query whatever the
dimension. The linear kernel ranks by inner product, not distance, so every sample ``x`` is
lifted to ``(x, sqrt(M^2 - |x|^2))`` with ``M`` the largest norm, and a query ``q`` to
``(q, 0)``. Then

    |lifted q - lifted x|^2 = |q|^2 + M^2 - 2 <q, x>,

so the nearest lifted samples are the most similar ones. The tree works in float64 and
rounds; :class:`InnerProductTree` therefore never claims more than it can prove: every
relation between a tree distance and a float64 similarity carries a tolerance that bounds,
with a wide safety factor, the rounding of the lift, of the tree's distances and of the
float64 similarity itself.
"""

import numpy as np
import torch
from scipy.spatial import cKDTree

UNIT_ROUNDOFF = 2.0**-53
# Each rounding step of the lift, the distance and the similarity is a few (d + 4) u of
# (|q| + M)^2; 64 times that leaves room for the tree's own bookkeeping.
SAFETY_FACTOR = 64


class InnerProductTree:
    """A k-d tree over lifted samples that answers inner-product questions with proven margins.

    Args:
        feats: (N, d) float64 CPU samples, as the similarities are computed from them.
        workers: threads for the tree's queries.
    """

    def __init__(self, feats: torch.Tensor, workers: int):
        points = feats.numpy()
        self._sq_norms = np.einsum("ij,ij->i", points, points)
        self._sq_max = float(self._sq_norms.max())
        lift = np.sqrt(np.maximum(self._sq_max - self._sq_norms, 0.0))
        self._points = points
        self._tree = cKDTree(np.hstack([points, lift[:, None]]))
        self._workers = workers
        self._rounding = SAFETY_FACTOR * (points.shape[1] + 4) * UNIT_ROUNDOFF

    def _queries(self, rows: np.ndarray) -> np.ndarray:
        return np.hstack([self._points[rows], np.zeros((len(rows), 1))])

    def _offset_and_tolerance(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``|q|^2 + M^2`` and the tolerance on any distance-similarity relation for each query."""
        offset = self._sq_norms[rows] + self._sq_max
        return offset, self._rounding * (np.sqrt(self._sq_norms[rows]) + np.sqrt(self._sq_max)) ** 2

    def nearest(self, rows: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``count`` samples nearest each of ``rows`` (self included), and what the rest can reach.

        Returns:
            ``(indices, unreached)``: (R, count) int64 sample indices, and (R,) float64 values
            that the float64 similarity of every sample *not* returned is below or equal to
            (``-inf`` when every sample was returned).
        """
        rows = rows.numpy()
        distances, indices = self._tree.query(self._queries(rows), k=count, workers=self._workers)
        distances, indices = distances.reshape(len(rows), count), indices.reshape(len(rows), count)
        offset, tolerance = self._offset_and_tolerance(rows)
        unreached = (offset - distances[:, -1] ** 2) / 2 + tolerance
        if count >= len(self._points):
            unreached = np.full(len(rows), -np.inf)
        return torch.from_numpy(indices.astype(np.int64)), torch.from_numpy(unreached)

    def reaching(self, rows: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
        """Every sample whose float64 similarity to ``rows[r]`` may be ``>= similarity[r]``.

        Returns:
            (R, C) int64 sample indices, each row padded with ``-1`` to the longest.
        """
        rows = rows.numpy()
        offset, tolerance = self._offset_and_tolerance(rows)
        sq_radius = offset - 2 * similarity.numpy() + 2 * tolerance
        balls = self._tree.query_ball_point(
            self._queries(rows), np.sqrt(np.maximum(sq_radius, 0.0)), workers=self._workers
        )
        padded = np.full((len(rows), max(len(ball) for ball in balls)), -1, dtype=np.int64)
        for row, ball in enumerate(balls):
            padded[row, : len(ball)] = ball
        return torch.from_numpy(padded)
