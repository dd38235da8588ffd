"""Synthetic LIBERO-shaped proprioception and embeddings with a known answer (used by the synthetic demo and tests).

* :func:`synthetic_state`: smooth 8-D trajectories in episodes (end-effector position,
  axis-angle, two gripper fingers), as LeRobot's LIBERO processing builds the state;
* :func:`embed`: a fixed random 2-layer network of a state plus noise, an embedding that
  encodes it. Applied to other, independent trajectories it gives an equally smooth
  embedding unrelated to the state.
"""

import torch


def synthetic_runs(
    n_episodes: int, length: int, seed: int = 0
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The state, and feat A of the two demo runs: ``aligned`` (embeds it) and ``independent`` (does not).

    Returns:
        ``(state, {"aligned": feat_a, "independent": feat_a})``, rows in episode order.
    """
    gen = torch.Generator().manual_seed(seed)
    state = synthetic_state(n_episodes, length, gen)
    network_seed = seed + 1
    return state, {
        "aligned": embed(state, torch.Generator().manual_seed(network_seed)),
        "independent": embed(
            synthetic_state(n_episodes, length, gen), torch.Generator().manual_seed(network_seed)
        ),
    }


def synthetic_state(n_episodes: int, length: int, gen: torch.Generator) -> torch.Tensor:
    """(n_episodes * length, 8) smooth LIBERO-like proprioceptive trajectories."""
    velocity = torch.randn(n_episodes, length, 3, generator=gen).cumsum(dim=1) * 0.002
    position = torch.tensor([-0.2, 0.0, 1.1]) + velocity.cumsum(dim=1)
    rotation = (
        torch.tensor([3.1, 0.0, 0.0]) + torch.randn(n_episodes, length, 3, generator=gen).cumsum(dim=1) * 0.01
    )
    closes_at = torch.randint(length // 3, 2 * length // 3, (n_episodes, 1), generator=gen)
    opening = torch.where(torch.arange(length) < closes_at, 0.04, 0.01)[..., None]
    gripper = torch.cat([opening, -opening], dim=-1)
    return torch.cat([position, rotation, gripper], dim=-1).reshape(n_episodes * length, 8)


def embed(state: torch.Tensor, gen: torch.Generator, dim: int = 256) -> torch.Tensor:
    """A fixed random 2-layer tanh network of the standardized state, plus noise."""
    z = (state - state.mean(dim=0)) / state.std(dim=0).clamp_min(1e-6)
    hidden = torch.tanh(z @ torch.randn(8, 128, generator=gen))
    return hidden @ torch.randn(128, dim, generator=gen) + 2.0 * torch.randn(len(state), dim, generator=gen)
