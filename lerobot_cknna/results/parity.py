"""How far features replayed from recorded frames are from those a simulation gathered.

``cknna.json``'s ``replay_parity`` record (:func:`parity_summary`) and the warning a reader gets
when the two disagree (:func:`replay_parity_warning`). The replay itself is
:mod:`lerobot_cknna.drivers.replay_parity`.
"""

import torch

# Relative to feat A's norm: float rounding between a batch of envs and a batch of recorded frames.
REPLAY_PARITY_TOLERANCE = 1e-4


def parity_summary(
    simulated_a: torch.Tensor, replayed_a: torch.Tensor, simulated_b: torch.Tensor, replayed_b: torch.Tensor
) -> dict:
    """How far replayed features are from simulated ones, sample by sample (rows pair up)."""
    simulated_a, replayed_a = simulated_a.double(), replayed_a.double()
    relative = (simulated_a - replayed_a).norm(dim=1) / simulated_a.norm(dim=1).clamp_min(1e-12)
    cosine = torch.nn.functional.cosine_similarity(simulated_a, replayed_a, dim=1)
    max_rel = relative.max().item()
    return {
        "n": len(simulated_a),
        "max_abs_diff_feat_b": (simulated_b.double() - replayed_b.double()).abs().max().item(),
        "max_rel_diff_feat_a": max_rel,
        "min_cosine_feat_a": cosine.min().item(),
        "tolerance": REPLAY_PARITY_TOLERANCE,
        "agrees": max_rel <= REPLAY_PARITY_TOLERANCE,
    }


def replay_parity_warning(parity: dict) -> str | None:
    """What a reader must be told when simulation and replay disagree (``None`` when they agree)."""
    notes = []
    if not parity["agrees"]:
        notes.append(
            f"feat A replayed from the recorded frames differs from the simulation's by up to "
            f"{parity['max_rel_diff_feat_a']:.2e} relative (tolerance {parity['tolerance']:.0e}): this policy's "
            "feat A depends on more than the current frame (its history or randomness), so a replay of the same "
            "episodes would not measure the same features"
        )
    if parity["missing"]:
        notes.append(f"{parity['missing']} samples had no recorded frame and were not compared")
    return f"Replay parity: {'; '.join(notes)}." if notes else None
