"""Glue for ``workflow/scripts/*.py``: logging into the rule's log, threads, and clean errors.

Every rule's script calls :func:`run`; the log file gets the stage's logging and its progress bars,
and a :class:`~sigeo.errors.SigeoError` ends the job with one readable line instead of a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable
from typing import Any

from .errors import SigeoError

log = logging.getLogger("sigeo")


def run(smk: Any, main: Callable[[], object]) -> None:
    """Run ``main`` for the Snakemake job ``smk`` with its log, threads and error reporting."""
    import torch

    torch.set_num_threads(max(1, int(smk.threads)))
    log_path = smk.log[0] if len(smk.log) else None
    stream = open(log_path, "a", buffering=1) if log_path else sys.stderr  # noqa: SIM115
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=stream,
        force=True,
    )
    try:
        with contextlib.redirect_stderr(stream), contextlib.redirect_stdout(stream):
            main()
    except SigeoError as exc:
        log.error("%s", exc)
        print(f"ERROR in rule {smk.rule}: {exc}", file=sys.__stderr__)
        sys.exit(1)
    finally:
        if stream is not sys.stderr:
            stream.close()
