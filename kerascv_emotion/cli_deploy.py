"""``kerascv-emotion predict`` and ``export``: use a finished run outside its index.

Registered on the main group by importing this module (the last lines of ``cli.py``).
"""

from __future__ import annotations

from pathlib import Path

import click

from kerascv_emotion.cli import (
    _calibration_option,
    _device_options,
    _max_pixels_option,
    _setup_devices,
    _with,
    main,
)
from kerascv_emotion.errors import ConfigError, DataError
from kerascv_emotion.export import FORMATS, QUANTIZE
from kerascv_emotion.faces import DEFAULT_MARGIN


@main.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="CSV to write.")
@click.option("--detect-faces", is_flag=True, help="Classify every face found (OpenCV Haar cascade), not the whole image.")
@click.option("--face-margin", default=DEFAULT_MARGIN, show_default=True, type=click.FloatRange(min=0),
              help="Grow each detected box by this fraction of its side on every side.")
@click.option("--annotate", "annotate_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Write copies of the images with boxes and labels drawn into this folder.")
@click.option("--explain", is_flag=True, help="Draw each box's Grad-CAM heat map into the --annotate copies.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@_max_pixels_option
@_calibration_option
@_with(_device_options)
def predict(run: Path, inputs: tuple[str, ...], out: Path, detect_faces: bool, face_margin: float,
            annotate_dir: Path | None, explain: bool, batch_size: int, max_pixels: int | None, calibrate: bool,
            threads: int, gpus: int) -> None:
    """Predict image files, folders (recursive) or glob patterns INPUT... with RUN's model; one CSV
    row per image (or per face with --detect-faces)."""
    if explain and annotate_dir is None:
        raise ConfigError("--explain draws heat maps into the annotated copies: give --annotate DIR too")
    _setup_devices(threads, gpus)
    from kerascv_emotion.predict import predict as predict_images
    from kerascv_emotion.predict import write_annotated, write_csv

    result = predict_images(run, inputs, detect_faces=detect_faces, margin=face_margin, batch_size=batch_size,
                            max_pixels=max_pixels, calibrate=calibrate)
    for item in result.skipped:
        click.echo(f"skipped {item['path']}: {item['reason']}")
    for path in result.no_face:
        click.echo(f"no face: {path}")
    write_csv(out, result)
    images = len({row["path"] for row in result.rows})
    click.echo(f"wrote {out}: {len(result.rows)} row(s) from {images} image(s); {len(result.skipped)} skipped"
               + (f", {len(result.no_face)} without a face" if detect_faces else ""))
    if annotate_dir is not None:
        from kerascv_emotion.explain import GradCam

        written = write_annotated(annotate_dir, result, max_pixels=max_pixels,
                                  explainer=GradCam.for_run(run) if explain else None)
        click.echo(f"wrote {len(written)} annotated image(s) into {annotate_dir}")


@main.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True, metavar="IMAGE...")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the heat-map overlays (one PNG per image).")
@click.option("--detect-faces", is_flag=True, help="Explain every face found, not the whole image.")
@click.option("--face-margin", default=DEFAULT_MARGIN, show_default=True, type=click.FloatRange(min=0),
              help="Grow each detected box by this fraction of its side on every side.")
@click.option("--layer", default=None, help="The layer whose feature map is weighted (default: the last "
              "convolution block's output before the head).")
@_max_pixels_option
@_calibration_option
@_with(_device_options)
def explain(run: Path, inputs: tuple[str, ...], out: Path, detect_faces: bool, face_margin: float,
            layer: str | None, max_pixels: int | None, calibrate: bool, threads: int, gpus: int) -> None:
    """Grad-CAM heat maps of RUN's predicted class over image files, folders or glob patterns
    IMAGE..., drawn with the label and probability into OUT/<name>.png."""
    _setup_devices(threads, gpus)
    from kerascv_emotion.explain import GradCam
    from kerascv_emotion.predict import predict as predict_images
    from kerascv_emotion.predict import write_annotated

    explainer = GradCam.for_run(run, layer)
    result = predict_images(run, inputs, detect_faces=detect_faces, margin=face_margin, max_pixels=max_pixels,
                            calibrate=calibrate)
    for item in result.skipped:
        click.echo(f"skipped {item['path']}: {item['reason']}")
    written = write_annotated(out, result, max_pixels=max_pixels, explainer=explainer)
    click.echo(f"wrote {len(written)} heat-map overlay(s) into {out} (layer {explainer.layer})")


@main.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--format", "fmt", required=True, type=click.Choice(list(FORMATS)))
@click.option("--quantize", default=None, type=click.Choice(list(QUANTIZE)),
              help="litert only: float16 weights, or int8 calibrated on the run's training images.")
@click.option("--out", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the file and export.json (default RUN/export/FORMAT[-QUANTIZE]).")
@_calibration_option
@_with(_device_options)
def export(run: Path, fmt: str, quantize: str | None, out: Path | None, calibrate: bool, threads: int,
           gpus: int) -> None:
    """Export RUN's model, load it back in its runtime and compare it with the Keras model on the
    validation images (figures in export.json beside the file); exit 1 if the check fails."""
    _setup_devices(threads, gpus)
    from kerascv_emotion.export import export_dir, export_run

    report = export_run(run, fmt, quantize, out, calibrate=calibrate)
    folder = out or export_dir(run, fmt, quantize)
    accuracy = (f", accuracy {report['export_accuracy']:.3f} (keras {report['keras_accuracy']:.3f})"
                if "export_accuracy" in report else "")
    click.echo(f"wrote {folder / report['file']} ({report['size_bytes'] / 1e6:.2f} MB, {report['runtime']}): "
               f"max |diff| {report['max_abs_diff']:.2g}{accuracy} on {report['compared_on']['images']} val images")
    if report["passed"] is False:
        raise DataError(f"{folder / report['file']} fails its check ({report['criterion']}); "
                        f"figures in {folder / 'export.json'}")
