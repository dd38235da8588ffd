"""Feature preparation before an alignment metric, as an explicit, recorded step.

The metrics in :mod:`lerobot_cknna.metrics.alignment` use features exactly as given. What is done
to them first changes the numbers a lot, so it is chosen here and written into every
result:

* ``"l2"``: L2-normalize each sample (the platonic-rep reference; kernel = cosine).
* ``"center_l2"``: subtract the mean over samples, then L2-normalize. Use this for
  features that are far from zero-mean, such as raw proprioceptive state: un-centred
  features are what pushes CKNNA above 1.
* ``"standardize"``: per-dimension z-score (constant dimensions become 0). Puts the
  state's position, rotation and gripper dimensions on one scale.
* ``"standardize_l2"``: per-dimension z-score, then L2-normalize.
* ``"none"``: as given.

``clamp_quantile`` applies the reference's optional outlier clamp first (platonic-rep
``remove_outliers``: clamp to +/- the per-sample ``q``-quantile of ``|x|``, averaged over
samples; the reference uses 0.95).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812

PREP_METHODS = ("none", "l2", "center_l2", "standardize", "standardize_l2")


@dataclass(frozen=True)
class FeaturePrep:
    """How one feature set is prepared: metrics use features as given, so this step is explicit and recorded.

    Example:
        >>> import torch
        >>> from lerobot_cknna import FeaturePrep
        >>> prep = FeaturePrep("center_l2")
        >>> prep.describe()
        'center_l2'
        >>> prep(torch.randn(100, 8)).norm(dim=1).allclose(torch.ones(100))
        True

    Attributes:
        method: one of :data:`PREP_METHODS`.
        clamp_quantile: reference outlier clamp applied first, e.g. 0.95; ``None`` for none.
    """

    method: str = "l2"
    clamp_quantile: float | None = None

    def __post_init__(self):
        if self.method not in PREP_METHODS:
            raise ValueError(
                f"Unknown feature prep {self.method!r}; choose one of {', '.join(PREP_METHODS)}."
            )
        if self.clamp_quantile is not None and not 0 < self.clamp_quantile <= 1:
            raise ValueError(f"clamp_quantile must be in (0, 1], got {self.clamp_quantile}.")

    def describe(self) -> str:
        """Short form recorded with results, e.g. ``"clamp0.95+l2"``."""
        if self.clamp_quantile is None:
            return self.method
        return f"clamp{self.clamp_quantile:g}+{self.method}"

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        """Prepare (N, d) features; returns a new tensor."""
        if self.clamp_quantile is not None:
            limit = torch.quantile(feats.abs().float(), self.clamp_quantile, dim=1).mean()
            feats = feats.clamp(-limit.item(), limit.item())
        if self.method in ("standardize", "standardize_l2"):
            std = feats.std(dim=0)
            scaled = (feats - feats.mean(dim=0)) / torch.where(std > 0, std, torch.ones_like(std))
            feats = torch.where(std > 0, scaled, torch.zeros_like(scaled))
        elif self.method == "center_l2":
            feats = feats - feats.mean(dim=0)
        if self.method in ("l2", "center_l2", "standardize_l2"):
            feats = F.normalize(feats, dim=-1)
        return feats
