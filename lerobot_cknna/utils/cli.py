"""Bad input ends a command with one clear message and exit status 2, not a traceback."""

import logging
import sys
from collections.abc import Callable

from draccus.utils import ParsingError
from lerobot.utils.utils import init_logging

from lerobot_cknna.capture.hooks import CaptureError
from lerobot_cknna.results.interruption import RunStoppedError

USER_ERRORS = (ValueError, FileNotFoundError, ParsingError, CaptureError)


def run_command(entry: Callable[[], object]) -> None:
    """Run a console command; report user errors (bad flags, files, data) cleanly."""
    init_logging()
    try:
        entry()
    except USER_ERRORS as error:
        while isinstance(error, ParsingError) and error.__cause__ is not None:
            error = error.__cause__
        logging.error(str(error))
        sys.exit(2)
    except RunStoppedError as error:
        logging.error(str(error))
        sys.exit(1)
    except KeyboardInterrupt:
        logging.error("Interrupted. What was gathered is kept in the output directory.")
        sys.exit(130)
