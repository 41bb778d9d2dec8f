"""``kerascv-emotion report`` and ``compare``: a run's figures and report.html; several runs side
by side (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import click

from kerascv_emotion.cli.options import split_option


@click.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@split_option
@click.option("--out", default=None, type=click.Path(file_okay=False, path_type=Path), help="Default RUN/report.")
def report(run: Path, split: str, out: Path | None) -> None:
    """Write RUN's figures and report.html (needs `evaluate` first for the test figures)."""
    from kerascv_emotion.reporting import write_run_report

    html = write_run_report(run, split=split, out_dir=out)
    click.echo(f"wrote {html}")


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@split_option
def compare(runs: tuple[Path, ...], out: Path, split: str) -> None:
    """Compare several evaluated runs side by side into OUT/comparison.html."""
    from kerascv_emotion.reporting import write_comparison
    from kerascv_emotion.reporting.comparison import comparison_notes

    html = write_comparison(list(runs), out, split=split)
    for note in comparison_notes(list(runs), split=split):
        click.echo(f"note: {note}")
    click.echo(f"wrote {html}")
