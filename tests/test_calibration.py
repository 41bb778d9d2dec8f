"""Temperature scaling of a run: fitted after training on the validation split, stored in
RUN/calibration.json and applied by `evaluate`, `predict` and `export` (the exported file
includes it), turned off by --no-calibration; the accuracy is unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kerascv_emotion.cli import main
from kerascv_emotion.errors import DataError
from kerascv_emotion.metrics import apply_temperature, negative_log_likelihood
from kerascv_emotion.runs import CALIBRATION, read_config, temperature_mismatch
from kerascv_emotion.temperature import run_temperature, tta_temperature


def _split(run: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Float images ``(N, H, W, C)`` in 0..1 and label ids ``(N,)`` of the run's ``split``."""
    from kerascv_emotion.data.cache import load_split
    from kerascv_emotion.data.index import read_index

    config = read_config(run)
    cached = load_split(read_index(config["index"]), split, 32, 3, cache_dir=Path(config["index"]).parent / ".cache")
    return np.asarray(cached.images, dtype=np.float32) / 255.0, np.asarray(cached.label_ids)


def _raw(run: Path, x: np.ndarray) -> np.ndarray:
    from kerascv_emotion.runs import load_model

    return np.asarray(load_model(run / "model.keras").predict_on_batch(x), dtype=np.float64)


def test_training_fits_a_temperature(tiny_run: Path) -> None:
    record = json.loads((tiny_run / CALIBRATION).read_text())
    assert record["split"] == "val" and record["images"] == 16 and record["temperature"] > 0
    assert record["calibrated"]["nll"] <= record["raw"]["nll"] + 1e-9
    assert run_temperature(tiny_run) == record["temperature"] and run_temperature(tiny_run, calibrate=False) is None
    assert set(record["tta"]) == {"hflip", "crops"}
    for mode, fit in record["tta"].items():
        assert fit["temperature"] > 0 and fit["calibrated"]["nll"] <= fit["raw"]["nll"] + 1e-9
        assert tta_temperature(tiny_run, mode) == (fit["temperature"], mode)


def test_tta_outputs_get_the_temperature_fitted_on_them(tiny_run: Path, tmp_path: Path) -> None:
    """evaluate --tta crops divides the crop-averaged outputs by the T fitted on the averaged
    val outputs (not the plain pass's); a calibration.json from before per-TTA temperatures
    falls back to the plain T and says so, in metrics.json and on the console."""
    from types import SimpleNamespace

    import keras

    from kerascv_emotion.inference import predict_batches
    from kerascv_emotion.metrics import fit_temperature
    from kerascv_emotion.temperature import fit_run_temperature

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("eval", "report", "export"))
    x, _ = _split(run, "val")
    images = (x * 255.0).round().astype(np.uint8)
    # the tiny run's model is near-constant on 16 images (every view gets the same output), so a
    # small random network whose outputs move with the crop stands in for it
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=images.shape[1:])
    features = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(8, activation="softmax", name="predictions")(features))
    model.save(run / "model.keras")
    # labels it mostly gets right (its plain arg-max, every 4th shifted), so that both temperatures
    # are interior optima of the NLL rather than a bound of the search
    y = predict_batches(model, images, 64).argmax(1)
    y[::4] = (y[::4] + 1) % 8
    record = fit_run_temperature(run, SimpleNamespace(images=images, label_ids=y))
    averaged = predict_batches(model, images, 64, "crops")
    assert record["tta"]["crops"]["temperature"] == pytest.approx(fit_temperature(y, averaged), rel=1e-6)
    assert abs(record["tta"]["crops"]["temperature"] - record["temperature"]) > 0.01

    runner = CliRunner()
    result = runner.invoke(main, ["evaluate", str(run), "--bootstrap", "0", "--tta", "crops"], catch_exceptions=False)
    assert result.exit_code == 0 and "fitted without TTA" not in result.output, result.output
    metrics = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    assert metrics["calibration"]["temperature"] == record["tta"]["crops"]["temperature"]
    assert metrics["calibration"]["temperature_tta"] == "crops"
    assert metrics["calibration"]["mismatch"] is None

    del record["tta"]
    (run / CALIBRATION).write_text(json.dumps(record))
    result = runner.invoke(main, ["evaluate", str(run), "--bootstrap", "0", "--tta", "crops"], catch_exceptions=False)
    assert result.exit_code == 0 and "fitted without TTA" in result.output, result.output
    metrics = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    assert metrics["calibration"]["temperature"] == record["temperature"]
    assert metrics["calibration"]["temperature_tta"] == "none"
    assert metrics["calibration"]["mismatch"] == temperature_mismatch("none", "crops", run)
    assert not any("TTA" in note for note in metrics.get("notes", []))  # stored once, in calibration
    assert result.output.count(f"`kerascv-emotion calibrate {run}` fits one") == 1

    def report_mentions() -> int:
        """How often the run's report says the temperature was fitted without TTA."""
        result = runner.invoke(main, ["report", str(run), "--split", "test"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return (run / "report" / "report.html").read_text().count("fitted without TTA")

    assert report_mentions() == 1
    # metrics.json files written before `mismatch` was stored: since per-TTA temperatures, the
    # sentence is among the notes; before them, neither is there and the report says it itself
    metrics_path = run / "eval" / "test" / "metrics.json"
    sentence = metrics["calibration"].pop("mismatch")
    metrics_path.write_text(json.dumps({**metrics, "notes": [*metrics.get("notes", []), sentence]}))
    assert report_mentions() == 1
    del metrics["calibration"]["temperature_tta"]
    metrics_path.write_text(json.dumps(metrics))
    assert report_mentions() == 1


def test_temperature_fixes_an_overconfident_model(tiny_run: Path, tmp_path: Path) -> None:
    """The last layer's weights times 20: the same arg-max, far sharper probabilities; the
    temperature `calibrate` fits softens them and lowers the validation NLL."""
    from kerascv_emotion.runs import load_model

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    model = load_model(run / "model.keras")
    last = model.get_layer("predictions")
    last.set_weights([w * 20.0 for w in last.get_weights()])
    model.save(run / "model.keras")
    result = CliRunner().invoke(main, ["calibrate", str(run)], catch_exceptions=False)
    assert result.exit_code == 0 and "wrote" in result.output, result.output
    record = json.loads((run / CALIBRATION).read_text())
    assert record["temperature"] > 2.0
    assert record["calibrated"]["nll"] < record["raw"]["nll"] - 0.1
    x, y = _split(run, "val")
    raw = _raw(run, x)
    assert negative_log_likelihood(y, apply_temperature(raw, record["temperature"])) == pytest.approx(
        record["calibrated"]["nll"], rel=1e-5)
    np.testing.assert_array_equal(apply_temperature(raw, record["temperature"]).argmax(1), raw.argmax(1))


def test_evaluate_reports_raw_and_calibrated_figures(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("eval", "report", "export"))
    runner = CliRunner()
    result = runner.invoke(main, ["evaluate", str(run), "--bootstrap", "20"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    t = run_temperature(run)
    assert f"(temperature {t:.3f})" in result.output
    calibrated = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    section = calibrated["calibration"]
    assert section["temperature"] == t and section["raw"]["n_bins"] == 15
    assert calibrated["ece"] == section["calibrated"]["ece"]
    assert calibrated["bootstrap"]["ece"]["estimate"] == pytest.approx(calibrated["ece"])
    assert calibrated["log_loss"] == pytest.approx(section["calibrated"]["nll"])
    x, y = _split(run, "test")
    probs = np.load(run / "eval" / "test" / "predictions.npz")["y_prob"]
    np.testing.assert_allclose(probs, apply_temperature(_raw(run, x), t), atol=1e-6)

    result = runner.invoke(main, ["evaluate", str(run), "--bootstrap", "0", "--no-calibration"],
                           catch_exceptions=False)
    assert result.exit_code == 0 and "no temperature applied" in result.output
    raw = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    assert raw["calibration"]["temperature"] is None and raw["calibration"]["calibrated"] is None
    assert raw["calibration"]["raw"] == section["raw"] and raw["ece"] == section["raw"]["ece"]
    assert raw["accuracy"] == calibrated["accuracy"] and raw["confusion_matrix"] == calibrated["confusion_matrix"]

    (run / CALIBRATION).write_text("{}")
    with pytest.raises(DataError, match="calibration.json"):
        run_temperature(run)


def test_predict_applies_the_temperature(tiny_run: Path, tmp_path: Path) -> None:
    from kerascv_emotion.data.index import read_index
    from kerascv_emotion.predict import predict

    index = read_index(read_config(tiny_run)["index"])
    files = [str(index.root / r.path) for r in index.records if r.split == "test"]
    x, _ = _split(tiny_run, "test")
    rows = predict(tiny_run, files, progress=False).rows
    probs = np.array([[r[f"prob_{c}"] for c in index.class_names] for r in rows])
    np.testing.assert_allclose(probs, apply_temperature(_raw(tiny_run, x), run_temperature(tiny_run)), atol=1e-5)


@pytest.mark.slow
def test_exported_litert_file_includes_the_temperature(tiny_run: Path, tmp_path: Path) -> None:
    from kerascv_emotion.export import FLOAT_TOLERANCE, export_run, file_runner

    x, _ = _split(tiny_run, "val")
    raw, t = _raw(tiny_run, x), run_temperature(tiny_run)
    for calibrate, expected in ((True, apply_temperature(raw, t)), (False, raw)):
        out = tmp_path / str(calibrate)
        report = export_run(tiny_run, "litert", out_dir=out, calibrate=calibrate)
        assert report["passed"] is True and report["temperature"] == (t if calibrate else None)
        run, _ = file_runner(out / "model.tflite", "litert")
        np.testing.assert_allclose(run(x), expected, atol=FLOAT_TOLERANCE)


def test_report_shows_calibration_galleries_and_comparison_ece(tiny_run: Path, tmp_path: Path) -> None:
    import base64
    import io
    import re

    from PIL import Image

    from kerascv_emotion.evaluation import evaluate
    from kerascv_emotion.reporting import write_comparison, write_run_report

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("eval", "report", "export"))
    metrics = evaluate(run, bootstrap=10)
    predictions = np.load(run / "eval" / "test" / "predictions.npz")
    with np.load(run / "eval" / "test" / "gallery.npz") as data:
        gallery = {key: data[key] for key in data.files}
    ids = gallery["index"]
    assert len(ids) and set(gallery["kind"]) <= {"correct", "wrong", "confusion"}
    np.testing.assert_allclose(gallery["confidence"], predictions["y_prob"][ids].max(1))
    np.testing.assert_array_equal(gallery["y_true"], predictions["y_true"][ids])
    x, _ = _split(run, "test")
    np.testing.assert_array_equal(gallery["images"], np.uint8(np.round(x[ids] * 255)))
    assert gallery["heat"].shape == gallery["images"].shape[:3] and gallery["heat"].max() <= 1.0

    page = write_run_report(run).read_text()
    for text in ("Reliability diagram", "What the network looks at", "ECE (calibration error)",
                 f"temperature {metrics['calibration']['temperature']:.3f}"):
        assert text in page, text
    assert (run / "report" / "reliability.png").is_file() and (run / "report" / "gallery_classes.png").is_file()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 8
    for data in images:  # every inlined figure decodes
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            image.load()
            assert min(image.size) > 100

    comparison = write_comparison([run], tmp_path / "cmp").read_text()
    assert "<th>ECE</th>" in comparison
    table = (tmp_path / "cmp" / "comparison.csv").read_text().splitlines()
    ece = table[1].split(",")[table[0].split(",").index("ece")]
    assert float(ece) == pytest.approx(metrics["ece"])


def test_temperature_mismatch_speaks_only_for_a_temperature_fitted_for_other_outputs() -> None:
    assert temperature_mismatch(None, "hflip", "run") is None  # no temperature applied
    assert temperature_mismatch("hflip", "hflip", "run") is None
    assert temperature_mismatch("none", "none", "run") is None
    line = temperature_mismatch("none", "hflip", "run")
    assert line is not None and "tta=hflip" in line and "`kerascv-emotion calibrate run`" in line
