"""``kerascv-emotion predict``, ``explain`` and ``export``: use a finished run (or a preset) outside
its index; ``presets`` and ``build-preset``: the bundled models."""

from __future__ import annotations

from pathlib import Path

import click

from kerascv_emotion.cli.options import (
    calibration_option,
    device_options,
    max_pixels_option,
    setup_devices,
    start_tensorflow,
    with_options,
)
from kerascv_emotion.errors import ConfigError, DataError
from kerascv_emotion.export import FORMATS, QUANTIZE
from kerascv_emotion.face_detection import DEFAULT_DETECTOR, DEFAULT_MARGIN, DETECTORS
from kerascv_emotion.predict import DEFAULT_EVERY
from kerascv_emotion.presets import DEFAULT_PRESET
from kerascv_emotion.runs import looks_like_run, read_config


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="[RUN] INPUT...")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="CSV to write.")
@click.option("--run", "run", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="A finished run folder whose model predicts (also taken as the first argument).")
@click.option("--preset", default=None,
              help=f"A bundled model (see `kerascv-emotion presets`); {DEFAULT_PRESET} without --run or --preset.")
@click.option("--detect-faces/--whole-image", default=None,
              help="Classify every face found, or the whole image (default: as the preset's card says; a run: "
                   "the whole image).")
@click.option("--detector", default=DEFAULT_DETECTOR, show_default=True, type=click.Choice(list(DETECTORS)),
              help="Face detector: YuNet (bundled CNN, five landmarks) or OpenCV's Haar cascade.")
@click.option("--align", is_flag=True, help="Level each face's eye line (yunet's landmarks) before classifying it.")
@click.option("--face-margin", default=DEFAULT_MARGIN, show_default=True, type=click.FloatRange(min=0),
              help="Grow each detected box by this fraction of its side on every side.")
@click.option("--annotate", "annotate_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Write copies of the images with boxes and labels drawn into this folder.")
@click.option("--every", default=DEFAULT_EVERY, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds between the frames of a video that are predicted.")
@click.option("--explain", is_flag=True, help="Draw each box's Grad-CAM heat map into the --annotate copies.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@max_pixels_option
@calibration_option
@with_options(device_options)
def predict(inputs: tuple[str, ...], out: Path, run: Path | None, preset: str | None, detect_faces: bool | None,
            detector: str, align: bool, face_margin: float, annotate_dir: Path | None, every: float, explain: bool,
            batch_size: int, max_pixels: int | None, calibrate: bool, threads: int, gpus: int) -> None:
    """Predict image or video files, folders (recursive) or glob patterns INPUT... with a preset's
    model (--preset, default the fer2013 preset) or a run's (--run RUN, or RUN as the first
    argument); one CSV row per image (a video: per frame every --every seconds), or per face with
    --detect-faces."""
    from kerascv_emotion.presets import preset_detects_faces, preset_dir

    if run is not None and preset is not None:
        raise ConfigError("give --run or --preset, not both")
    if run is None and preset is None and len(inputs) > 1 and looks_like_run(inputs[0]):
        run, inputs = Path(inputs[0]), inputs[1:]  # a run folder, finished or not (then: read_config's error)
    if run is None:
        run = preset_dir(preset or DEFAULT_PRESET)
        detect_faces = preset_detects_faces(run) if detect_faces is None else detect_faces
    detect_faces = bool(detect_faces)
    if explain and annotate_dir is None:
        raise ConfigError("--explain draws heat maps into the annotated copies: give --annotate DIR too")
    setup_devices(threads, gpus)
    from kerascv_emotion.predict import (
        check_face_options,
        collect_inputs,
        write_annotated,
        write_csv,
    )
    from kerascv_emotion.predict import predict as predict_images

    read_config(run)  # the run's and the options' problems first, then the inputs'
    check_face_options(detect_faces, detector, align)
    found = collect_inputs(inputs)
    if out.resolve() in found.paths():
        raise DataError(f"--out {out} is one of the inputs; give a new file name for the CSV")
    result = predict_images(run, found, detect_faces=detect_faces, margin=face_margin, batch_size=batch_size,
                            max_pixels=max_pixels, detector=detector, align=align, every=every,
                            calibrate=calibrate)
    for item in result.skipped:
        click.echo(f"skipped {item['path']}: {item['reason']}")
    for path in result.no_face:
        click.echo(f"no face: {path}")
    if not result.rows:
        raise DataError(f"nothing predicted: {len(result.skipped)} input file(s) skipped, {len(result.no_face)} "
                        f"without a face (see above); {out} not written"
                        + ("; --whole-image classifies whole images" if result.no_face else ""))
    write_csv(out, result)
    images = len({row["path"] for row in result.rows})
    click.echo(f"wrote {out}: {len(result.rows)} row(s) from {images} image(s); {len(result.skipped)} skipped"
               + (f", {len(result.no_face)} without a face" if detect_faces else ""))
    if annotate_dir is not None:
        from kerascv_emotion.explain import GradCam

        written = write_annotated(annotate_dir, result, max_pixels=max_pixels, every=every,
                                  explainer=GradCam.for_run(run) if explain else None)
        click.echo(f"wrote {len(written)} annotated file(s) into {annotate_dir}")


@click.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True, metavar="IMAGE...")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the heat-map overlays (one PNG per image).")
@click.option("--detect-faces", is_flag=True, help="Explain every face found, not the whole image.")
@click.option("--face-margin", default=DEFAULT_MARGIN, show_default=True, type=click.FloatRange(min=0),
              help="Grow each detected box by this fraction of its side on every side.")
@click.option("--layer", default=None, help="The layer whose feature map is weighted (default: the last "
              "convolution block's output before the head).")
@max_pixels_option
@calibration_option
@with_options(device_options)
def explain(run: Path, inputs: tuple[str, ...], out: Path, detect_faces: bool, face_margin: float,
            layer: str | None, max_pixels: int | None, calibrate: bool, threads: int, gpus: int) -> None:
    """Grad-CAM heat maps of RUN's predicted class over image files, folders or glob patterns
    IMAGE..., drawn with the label and probability into OUT/<name>.png."""
    setup_devices(threads, gpus)
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


@click.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--format", "fmt", required=True, type=click.Choice(list(FORMATS)))
@click.option("--quantize", default=None, type=click.Choice(list(QUANTIZE)),
              help="litert only: float16 weights, or int8 calibrated on the run's training images.")
@click.option("--out", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the file and export.json (default RUN/export/FORMAT[-QUANTIZE]).")
@click.option("--index", "index_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="An index of the run's classes whose val split checks the file and whose train split "
                   "calibrates int8 (default: the run's own; a preset needs one).")
@calibration_option
@with_options(device_options)
def export(run: Path, fmt: str, quantize: str | None, out: Path | None, index_path: Path | None, calibrate: bool,
           threads: int, gpus: int) -> None:
    """Export RUN's model, load it back in its runtime and compare it with the Keras model on the
    validation images (figures in export.json beside the file); exit 1 if the check fails."""
    setup_devices(threads, gpus)
    from kerascv_emotion.export import export_dir, export_run

    report = export_run(run, fmt, quantize, out, calibrate=calibrate, index=index_path)
    folder = out or export_dir(run, fmt, quantize)
    accuracy = (f", accuracy {report['export_accuracy']:.3f} (keras {report['keras_accuracy']:.3f})"
                if "export_accuracy" in report
                else f", RMSE {report['export_rmse']:.3f} (keras {report['keras_rmse']:.3f})")
    click.echo(f"wrote {folder / report['file']} ({report['size_bytes'] / 1e6:.2f} MB, {report['runtime']}): "
               f"max |diff| {report['max_abs_diff']:.2g}{accuracy} on {report['compared_on']['images']} val images")
    if report["passed"] is False:
        raise DataError(f"{folder / report['file']} fails its check ({report['criterion']}); "
                        f"figures in {folder / 'export.json'}")


@click.command()
def presets() -> None:
    """List the bundled presets (models that predict needs no run folder for) with their cards."""
    from kerascv_emotion.presets import list_presets, presets_dir

    cards = list_presets()
    if not cards:
        click.echo(f"no presets in {presets_dir()}")
    for name, card in cards.items():
        val = card["validation"]
        figures = (f"val accuracy {val['accuracy']['estimate']:.3f} [{val['accuracy']['low']:.3f}, "
                   f"{val['accuracy']['high']:.3f}], macro F1 {val['macro_f1']['estimate']:.3f} "
                   f"[{val['macro_f1']['low']:.3f}, {val['macro_f1']['high']:.3f}] (tta {val['tta']})"
                   if card["task"] == "classification" else f"val {val['images']} images")
        click.echo(f"{name}{' (default)' if name == DEFAULT_PRESET else ''}: {card['architecture']}, "
                   f"{len(card['classes'])} classes ({', '.join(card['classes'])}), "
                   f"{card['input']['image_size']} px x {card['input']['channels']} channel(s), "
                   f"{'faces' if card['input']['faces'] else 'whole images'}; {figures}; "
                   f"{card['size_bytes'] / 1e6:.1f} MB; trained on {card['training']['data']} "
                   f"(data licence: {card['training']['data_licence']}), commit {card['training']['commit']}")


@click.command("build-preset")
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", required=True, help="Preset name (a folder name), e.g. fer2013.")
@click.option("--data-licence", required=True, help="Licence or terms of the training data, quoted on the card.")
@click.option("--train-command", required=True, help="The exact command that trained RUN (a run does not record it).")
@click.option("--commit", required=True, help="The git commit of the code that trained RUN.")
@click.option("--faces/--whole-images", default=True, show_default=True,
              help="The model takes face crops (predict detects faces first) or whole images.")
@click.option("--note", "notes", multiple=True, help="A line for the card's notes (repeatable).")
@click.option("--into", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Presets folder to write into (default: the package's, or $KERASCV_EMOTION_PRESETS).")
@click.option("--replace", is_flag=True, help="Overwrite an existing preset of that name.")
def build_preset(run: Path, name: str, data_licence: str, train_command: str, commit: str, faces: bool,
                 notes: tuple[str, ...], into: Path | None, replace: bool) -> None:
    """Make preset NAME from RUN, a finished run evaluated on its val split with bootstrap
    intervals: model.keras and config.json copied, card.json written from the run's figures."""
    start_tensorflow()  # the card loads the model: TensorFlow starts quietly, as in every command
    from kerascv_emotion.presets import build_preset as build

    folder = build(run, name, data_licence, train_command, commit, faces, notes, into, replace)
    click.echo(f"wrote preset {folder} (model.keras, config.json, card.json)")
