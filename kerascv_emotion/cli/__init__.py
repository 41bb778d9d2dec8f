"""``kerascv-emotion``: a thin click layer over the library (every Snakemake rule calls it).

Library errors (:class:`~kerascv_emotion.errors.KerasCVEmotionError`) and filesystem errors
(``OSError``: a full disk, a read-only or missing folder) are printed as one line and exit with
status 1; any other exception is a bug and keeps its traceback. TensorFlow is imported only by
the commands that need it, quietly unless ``--verbose``.

The ``main`` group lives here and every command is registered on it below, in one place; the
commands live in one module per kind (``data``, ``train``, ``evaluate``, ``report``,
``ensemble``, ``deploy``), which share ``options`` and never import this module.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from kerascv_emotion.cli import data, deploy, ensemble, evaluate, report, train
from kerascv_emotion.errors import KerasCVEmotionError
from kerascv_emotion.version import __version__

__all__ = ["main"]


def _error_line(exc: KerasCVEmotionError | OSError) -> str:
    """The one line the CLI prints for a library or filesystem error (after ``Error: ``):
    an OSError as ``PATH: cause`` (``SRC -> DST: cause`` for a rename)."""
    if isinstance(exc, OSError):
        cause = exc.strerror or str(exc) or type(exc).__name__
        if exc.filename is None:
            return cause
        where = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else str(exc.filename)
        return f"{where}: {cause}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class _Group(click.Group):
    """Turns library and filesystem errors into ``Error: <one line>`` and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (KerasCVEmotionError, OSError) as exc:
            raise click.ClickException(_error_line(exc)) from None


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="kerascv-emotion")
@click.option("-q", "--quiet", is_flag=True, help="Log warnings and errors only.")
@click.option("-v", "--verbose", is_flag=True, help="Also show TensorFlow's own start-up and C++ log lines.")
def main(quiet: bool, verbose: bool) -> None:
    """Train, tune, evaluate, report and compare CNN classifiers for facial affect and X-rays."""
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


for _command in (
    data.synth, data.index_command,
    train.train, train.tune, train.models_command,
    evaluate.evaluate, evaluate.calibrate, evaluate.correct_prior,
    report.report, report.compare,
    ensemble.ensemble, ensemble.distill,
    deploy.predict, deploy.explain, deploy.export, deploy.presets, deploy.build_preset,
):
    main.add_command(_command)
del _command
