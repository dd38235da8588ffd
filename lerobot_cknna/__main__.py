"""``python -m lerobot_cknna``: the ``lerobot-cknna`` command, for ``accelerate launch -m lerobot_cknna``."""

from lerobot_cknna.scripts.lerobot_cknna import main

if __name__ == "__main__":
    main()
