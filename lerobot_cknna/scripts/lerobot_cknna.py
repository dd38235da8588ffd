"""``lerobot-cknna``: alignment between a LeRobot policy's condition embedding and proprioception.

The policy-facing command (LIBERO simulation through lerobot-eval, LeRobotDataset replay)
is not built yet; this entry point says what is available today.
"""

import sys

AVAILABLE = """\
lerobot-cknna: how well does a LeRobot policy's condition embedding line up with the robot's
proprioceptive state (CKNNA, mutual kNN)?

Not yet available: running a policy (--policy.path with --env.* or --dataset.*).
Available now:
  lerobot-cknna-demo                 the metrics, nulls and intervals on synthetic episodes
  lerobot-cknna-score DIR [--cknna.*] score saved features (DIR/features.safetensors)
  python -c "from lerobot_cknna.metrics import cknna; help(cknna)"   the metrics API
"""


def main():
    """Print what is available and exit non-zero unless help was asked for."""
    print(AVAILABLE)
    sys.exit(0 if {"-h", "--help"} & set(sys.argv[1:]) or len(sys.argv) == 1 else 2)


if __name__ == "__main__":
    main()
