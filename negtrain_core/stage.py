"""What every workflow script shares: an expected error (bad input, an exploded run) ends the job with one line, in
the rule's log and on Snakemake's stderr, instead of a traceback."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def one_line_errors(*errors: type[Exception], context: str = "") -> Iterator[None]:
    """Turn ``errors`` raised inside into a logged error and ``SystemExit("negtrain: <context><error>")``."""
    try:
        yield
    except errors as err:
        logging.error("%s", err)
        raise SystemExit(f"negtrain: {context}{err}") from None
