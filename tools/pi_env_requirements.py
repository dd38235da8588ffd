"""Requirements of ``.venv-pi/``, derived from ``pyproject.toml`` so that the list lives in one place.

The Pi environment gets the project's dependencies with LeRobot's extras dropped (they pull
the transformers that openpi's fork replaces), the ``[tool.lerobot-cknna.pi-env]``
dependencies and the test tools. Distributions listed there under ``no-deps`` require plain
``transformers`` (which would overwrite openpi's): they are installed without dependencies
and ``--their-dependencies`` prints what they need apart from transformers, from their
installed metadata.

Usage (what ``make setup-pi`` runs)::

    python tools/pi_env_requirements.py > requirements.txt
    python tools/pi_env_requirements.py --no-deps > no-deps.txt
    .venv-pi/bin/python tools/pi_env_requirements.py --their-dependencies > their-dependencies.txt
"""

import argparse
import importlib.metadata
import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
REPLACED_BY_OPENPI = "transformers"


def _project() -> dict:
    return tomllib.loads(PYPROJECT.read_text())


def _pi_env() -> dict:
    return _project()["tool"]["lerobot-cknna"]["pi-env"]


def requirements() -> list[str]:
    """The project's dependencies without LeRobot's extras, the Pi environment's own, and the test tools."""
    project = _project()["project"]
    without_extras = [
        re.sub(r"^lerobot\[[^\]]*\]", "lerobot", requirement) for requirement in project["dependencies"]
    ]
    return [*without_extras, *_pi_env()["dependencies"], *project["optional-dependencies"]["test"]]


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0)


def their_dependencies() -> list[str]:
    """What the installed ``no-deps`` distributions require, except plain transformers and extras."""
    found = []
    for requirement in _pi_env()["no-deps"]:
        for dependency in importlib.metadata.requires(_name(requirement)) or []:
            if "extra ==" not in dependency and _name(dependency).lower() != REPLACED_BY_OPENPI:
                found.append(dependency)
    return found


def main() -> None:
    """Print the requested list, one requirement a line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--no-deps", action="store_true", help="distributions to install without dependencies")
    group.add_argument(
        "--their-dependencies", action="store_true", help="what those need, minus transformers"
    )
    args = parser.parse_args()
    if args.no_deps:
        lines = _pi_env()["no-deps"]
    elif args.their_dependencies:
        lines = their_dependencies()
    else:
        lines = requirements()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
