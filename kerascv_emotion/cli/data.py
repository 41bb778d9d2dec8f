"""``kerascv-emotion synth`` and ``index``: make or index a data set."""

from __future__ import annotations

from pathlib import Path

import click

from kerascv_emotion.cli.options import split_pairs
from kerascv_emotion.data import synthetic
from kerascv_emotion.data.index import SplitOptions
from kerascv_emotion.data.synthetic import writer as synthetic_defaults


def _parse_class_map(pairs: tuple[str, ...]) -> dict[str, str]:
    return dict(split_pairs("--class-map", pairs, "use OLD=NEW, e.g. --class-map angry=anger"))


@click.command()
@click.argument("kind", type=click.Choice(["faces", "xrays"]))
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--per-class", default=synthetic_defaults.PER_CLASS, show_default=True, help="Images per class.")
@click.option("--size", default=synthetic_defaults.SIZE, show_default=True, help="Image side in pixels.")
@click.option("--seed", default=synthetic_defaults.SEED, show_default=True)
@click.option("--viral-pneumonia", is_flag=True, help="xrays: add the viral_pneumonia class.")
@click.option("--val-fraction", default=synthetic_defaults.VAL_FRACTION, show_default=True)
@click.option("--test-fraction", default=synthetic_defaults.TEST_FRACTION, show_default=True)
def synth(kind: str, out: Path, per_class: int, size: int, seed: int, viral_pneumonia: bool,
          val_fraction: float, test_fraction: float) -> None:
    """Generate the built-in offline data set KIND into OUT (images + OUT/index.csv)."""
    if kind == "faces":
        index = synthetic.generate_faces(out, per_class=per_class, size=size, seed=seed,
                                         val_fraction=val_fraction, test_fraction=test_fraction)
    else:
        classes = synthetic.XRAY_CLASSES if viral_pneumonia else synthetic.XRAY_CLASSES[:2]
        index = synthetic.generate_xrays(out, per_class=per_class, size=size, seed=seed, classes=classes,
                                         val_fraction=val_fraction, test_fraction=test_fraction)
    click.echo(f"wrote {len(index)} images of {index.num_classes} classes and {out / 'index.csv'}")


@click.command("index")
@click.argument("root", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Index CSV to write (its .meta.json sidecar goes beside it).")
@click.option("--format", "fmt", default="folders", show_default=True,
              help="Reader: folders, fer2013-csv, fer2013, affectnet, covid, ckplus.")
@click.option("--val-fraction", default=SplitOptions.val_fraction, show_default=True,
              help="Carved from train when the data has no val split.")
@click.option("--test-fraction", default=SplitOptions.test_fraction, show_default=True,
              help="Carved from train when the data has no test split.")
@click.option("--seed", default=SplitOptions.seed, show_default=True, help="Seed of the stratified split.")
@click.option("--class-map", multiple=True, metavar="OLD=NEW", help="Rename a class (repeatable).")
@click.option("--classes", default=None, help="Comma-separated classes to keep, in label order.")
@click.option("--images-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="fer2013-csv: where to write the decoded images (default: OUT's NAME_images/).")
@click.option("--task", type=click.Choice(["classification", "regression"]), default="classification")
@click.option("--dedupe", is_flag=True, help="Drop exact duplicates outside their earliest split (train < val < test).")
def index_command(root: Path, out: Path, fmt: str, val_fraction: float, test_fraction: float, seed: int,
                  class_map: tuple[str, ...], classes: str | None, images_dir: Path | None, task: str,
                  dedupe: bool) -> None:
    """Index the images under ROOT (class folders, or a known data set's files) into OUT."""
    from kerascv_emotion.data.readers import build_index, default_images_dir

    if fmt == "fer2013-csv" and images_dir is None:
        images_dir = default_images_dir(out)
    index = build_index(fmt, root, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
                        class_map=_parse_class_map(class_map) or None,
                        classes=[c.strip() for c in classes.split(",")] if classes else None,
                        images_dir=images_dir, task=task, dedupe=dedupe)
    dup = index.meta["duplicates"]
    if dedupe and dup["groups"]:
        click.echo(f"--dedupe: dropped {len(dup['dropped'])} duplicate image(s)")
    index.write(out)
    skipped = index.meta.get("skipped", [])
    for split, per_class in index.counts().items():
        click.echo(f"{split:5s} {sum(per_class.values()):7d}  " + ", ".join(f"{k}: {v}" for k, v in per_class.items()))
    click.echo(f"classes: {index.class_names}")
    click.echo(f"exact duplicates: {dup['groups']} group(s), {dup['cross_split_groups']} across splits, "
               f"{dup['conflicting_groups']} with conflicting labels"
               + ("" if dedupe or not dup["cross_split_groups"] else " (use --dedupe)"))
    if skipped:
        click.echo(f"skipped {len(skipped)} file(s) that are not images (or dangling links, FIFOs); "
                   f"listed in {out.with_suffix('')}.meta.json")
    click.echo(f"wrote {out}")
