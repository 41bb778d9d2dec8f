"""`ensemble` and `distill`: an ensemble of two tiny runs of different input sizes and channels
averages its members' probabilities, loads in safe mode, exports to LiteRT and is a run for
every command; members of other classes or tasks are refused in one line; a student distilled
from it for one epoch moves towards its soft targets."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kerascv_emotion.cli import main
from kerascv_emotion.errors import ConfigError


def _invoke(*args: object) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def grey_run(tiny_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A grey 24 px MobileNet (alpha 0.25) trained 1 epoch on ``tiny_faces``."""
    from kerascv_emotion.training import TrainSettings, train

    settings = TrainSettings(arch="mobilenet", index=str(tiny_faces), image_size=24, channels=1, epochs=1,
                             batch_size=8, augment=None, precise_bn_images=0, arch_kwargs={"alpha": 0.25})
    return train(settings, tmp_path_factory.mktemp("runs") / "grey", verbose=0)


@pytest.fixture(scope="module")
def ensemble_run(tiny_run: Path, grey_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "ensemble"
    _invoke("ensemble", tiny_run, grey_run, "--out", out, "--weights", "3,1")
    return out


def _probabilities(run: Path, images: np.ndarray) -> np.ndarray:
    from kerascv_emotion.runs import load_model

    return np.asarray(load_model(run / "model.keras").predict_on_batch(images), dtype=np.float64)


def test_ensemble_is_the_weighted_mean_of_its_members(tiny_run: Path, grey_run: Path, ensemble_run: Path) -> None:
    import keras

    from kerascv_emotion.ensemble import LUMA

    images = np.random.default_rng(0).random((5, 32, 32, 3), dtype=np.float32)
    resized = keras.ops.convert_to_numpy(keras.ops.image.resize(images, (24, 24), interpolation="bilinear"))
    grey = (resized @ np.array(LUMA, dtype=np.float32))[..., None]
    expected = 0.75 * _probabilities(tiny_run, images) + 0.25 * _probabilities(grey_run, grey)
    np.testing.assert_allclose(_probabilities(ensemble_run, images), expected, atol=1e-6)
    config = json.loads((ensemble_run / "config.json").read_text())
    assert (config["arch"], config["image_size"], config["channels"]) == ("ensemble", 32, 3)
    assert [m["weight"] for m in config["members"]] == [0.75, 0.25]
    assert [m["image_size"] for m in config["members"]] == [32, 24]
    assert json.loads((ensemble_run / "class_names.json").read_text()) == config["class_names"]


@pytest.mark.slow
def test_ensemble_loads_in_safe_mode_and_exports_to_litert(ensemble_run: Path, tmp_path: Path) -> None:
    import keras

    from kerascv_emotion.export import ACCURACY_TOLERANCE, FLOAT_TOLERANCE, export_run

    images = np.random.default_rng(1).random((3, 32, 32, 3), dtype=np.float32)
    plain = keras.saving.load_model(ensemble_run / "model.keras", safe_mode=True)
    np.testing.assert_allclose(plain.predict_on_batch(images), _probabilities(ensemble_run, images), atol=1e-6)
    report = export_run(ensemble_run, "litert", out_dir=tmp_path / "litert")
    assert report["passed"] is True and report["max_abs_diff"] <= FLOAT_TOLERANCE
    report = export_run(ensemble_run, "litert", "int8", out_dir=tmp_path / "int8")
    assert report["passed"] is True and report["accuracy_drop"] <= ACCURACY_TOLERANCE


@pytest.mark.slow
def test_ensemble_is_evaluated_reported_compared_and_predicted_like_a_run(
        tiny_run: Path, ensemble_run: Path, tmp_path: Path) -> None:
    members = [tmp_path / "mobilenet", tmp_path / "ens"]
    shutil.copytree(tiny_run, members[0], ignore=shutil.ignore_patterns("eval", "report", "export"))
    shutil.copytree(ensemble_run, members[1])
    for run in members:
        assert "accuracy" in _invoke("evaluate", run, "--bootstrap", "0")
    page = Path(_invoke("report", members[1]).split()[-1]).read_text()
    assert "<h2>Ensemble</h2>" in page and "0.750" in page
    compared = _invoke("compare", *members, "--out", tmp_path / "cmp")
    html = (tmp_path / "cmp" / "comparison.html").read_text()
    assert "ens: an ensemble, the weighted mean of mobilenet (0.75), grey (0.25)." in html, compared
    metrics = json.loads((members[1] / "eval" / "test" / "metrics.json").read_text())
    photos = Path(json.loads((members[1] / "config.json").read_text())["index"]).parent  # the whole data set
    _invoke("predict", members[1], photos, "--out", tmp_path / "p.csv")
    with open(tmp_path / "p.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= metrics["n"] and {f"prob_{c}" for c in metrics["class_names"]} <= set(rows[0])


@pytest.mark.parametrize(("key", "value"), [("class_names", ["a", "b"]), ("task", "regression")])
def test_members_must_share_task_and_class_names(tiny_run: Path, tmp_path: Path, key: str, value: object) -> None:
    odd = tmp_path / "odd"
    shutil.copytree(tiny_run, odd, ignore=shutil.ignore_patterns("eval", "report", "export"))
    config = json.loads((odd / "config.json").read_text())
    config[key] = value
    if key == "class_names":
        config["output_names"] = value
    (odd / "config.json").write_text(json.dumps(config))
    result = CliRunner().invoke(main, ["ensemble", str(tiny_run), str(odd), "--out", str(tmp_path / "e")])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert result.output.startswith(f"Error: {odd}: ") and "must share task and class names" in result.output
    assert not (tmp_path / "e").exists()


def test_ensemble_weights_are_checked(tiny_run: Path, tmp_path: Path) -> None:
    for weights, message in (("1", "1 value(s) for 2 members"), ("1,x", "comma-separated numbers"),
                             ("0,0", "positive sum")):
        result = CliRunner().invoke(main, ["ensemble", str(tiny_run), str(tiny_run), "--out", str(tmp_path / "e"),
                                           "--weights", weights])
        assert result.exit_code == 1 and message in result.output, result.output


@pytest.mark.slow
def test_distill_trains_a_student_from_an_ensemble(ensemble_run: Path, tmp_path: Path) -> None:
    """One epoch of a student at another input size: the run folder of a trained run, the
    teacher and loss settings recorded, and the soft-target loss lower after the epoch."""
    out = tmp_path / "student"
    _invoke("distill", ensemble_run, "--arch", "mobilenet", "--arch-option", "alpha=0.25", "--out", out,
            "--image-size", 24, "--epochs", 1, "--batch-size", 8, "--augment", "none", "--temperature", 2,
            "--alpha", 0.25)
    config = json.loads((out / "config.json").read_text())
    assert config["distilled_from"] == str(ensemble_run.resolve())
    assert (config["temperature"], config["alpha"], config["image_size"]) == (2.0, 0.25, 24)
    with open(out / "history.csv", newline="") as handle:
        history = list(csv.DictReader(handle))
    assert len(history) == 1 and {"student_loss", "distillation_loss", "val_macro_f1"} <= set(history[0])
    assert "accuracy" in _invoke("evaluate", out, "--bootstrap", "0")


@pytest.mark.parametrize("offline", [False, True])
def test_one_epoch_of_distillation_lowers_the_soft_target_loss(tiny_run: Path, offline: bool) -> None:
    """A fresh student (another input size) fitted one epoch (4 steps, Adam) on soft targets
    alone, from the teacher (online) or carried in ``y`` (offline): its soft-target loss on those
    images (training mode: batch statistics, no dropout) falls, and the checkpointed model is
    the student alone."""
    import keras

    from kerascv_emotion.callbacks import AtomicModelCheckpoint
    from kerascv_emotion.distillation import ProbabilityDistiller, teacher_for
    from kerascv_emotion.models import build_model
    from kerascv_emotion.runs import load_model
    from kerascv_emotion.settings import TrainSettings
    from kerascv_emotion.training import compile_model, make_optimizer

    keras.utils.set_random_seed(0)
    student = build_model("mobilenet", input_shape=(24, 24, 3), num_classes=8, alpha=0.25, dropout=0.0)
    teacher = teacher_for(load_model(tiny_run / "model.keras"), (24, 24, 3))
    model = ProbabilityDistiller(teacher, student, temperature=2.0, alpha=0.0, offline=offline)
    settings = TrainSettings(arch="mobilenet", index="unused.csv", image_size=24)
    compile_model(model, settings, make_optimizer(settings, 1e-3, 4, 1))
    rng = np.random.default_rng(0)
    x = rng.random((16, 24, 24, 3), dtype=np.float32)
    y = np.eye(8, dtype=np.float32)[rng.integers(0, 8, 16)]
    if offline:
        y = np.concatenate([y, teacher.predict(x, verbose=0)], axis=1)

    def soft_loss() -> float:
        return float(model.soft_target_loss(x, student(x, training=True)))

    before = soft_loss()
    checkpoint = AtomicModelCheckpoint(Path(tiny_run).parent / "distilled.keras", monitor="loss")
    history = model.fit(np.tile(x, (4, 1, 1, 1)), np.tile(y, (4, 1)), batch_size=16, epochs=1, shuffle=False,
                        verbose=0, callbacks=[checkpoint])
    assert 0 < soft_loss() < before
    assert history.history["distillation_loss"][0] == pytest.approx(history.history["loss"][0], rel=1e-5)
    saved = load_model(checkpoint.final_path)
    assert saved.name == student.name and saved.count_params() == student.count_params()


def test_offline_soft_targets_give_the_online_loss_and_validate_on_labels(tiny_run: Path) -> None:
    """Carrying the teacher's outputs in ``y`` gives the loss the online teacher gives; a batch
    without them scores the label loss alone in validation and is refused in training; metrics
    see only the labels."""
    import keras

    from kerascv_emotion.distillation import ProbabilityDistiller, offline_soft_targets, teacher_for
    from kerascv_emotion.models import build_model
    from kerascv_emotion.runs import load_model
    from kerascv_emotion.settings import TrainSettings
    from kerascv_emotion.training import compile_model, make_optimizer

    keras.utils.set_random_seed(1)
    student = build_model("mobilenet", input_shape=(24, 24, 3), num_classes=8, alpha=0.25, dropout=0.0)
    teacher = teacher_for(load_model(tiny_run / "model.keras"), (24, 24, 3))
    settings = TrainSettings(arch="mobilenet", index="unused.csv", image_size=24)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (40, 24, 24, 3), dtype=np.uint8)
    x = images.astype(np.float32) / 255.0
    y = np.eye(8, dtype=np.float32)[rng.integers(0, 8, 40)]
    targets = offline_soft_targets(teacher, images, batch_size=1)  # two chunks of 32 batches
    flipped = teacher.predict(x[:, :, ::-1], verbose=0)
    np.testing.assert_allclose(targets, (teacher.predict(x, verbose=0) + flipped) / 2, rtol=1e-5, atol=1e-6)
    losses = {}
    for offline in (False, True):
        model = ProbabilityDistiller(teacher, student, temperature=2.0, alpha=0.3, offline=offline)
        compile_model(model, settings, make_optimizer(settings, 1e-3, 1, 1))
        y_pred = student(x, training=False)
        carried = np.concatenate([y, teacher.predict(x, verbose=0)], axis=1) if offline else y
        losses[offline] = float(model.compute_loss(x, carried, y_pred, training=False))
        if offline:
            label_only = float(model.compute_loss(x, y, y_pred, training=False))
            assert label_only == pytest.approx(float(model.label_loss(y, y_pred)), rel=1e-6)
            with pytest.raises(ConfigError, match=r"carry the teacher's probabilities beside the labels"):
                model.compute_loss(x, y, y_pred, training=True)
            # a metric that reads every column (accuracy's arg-max would not see the carried half)
            model.compile(optimizer="adam", loss=model.label_loss, metrics=[keras.metrics.MeanSquaredError("mse")])
            mse = float(model.compute_metrics(x, carried, y_pred)["mse"])
            assert mse == pytest.approx(np.mean((y - np.asarray(y_pred)) ** 2), rel=1e-5)
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)


def test_an_offline_distill_killed_after_training_resumes_without_the_teacher_pass(
        tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed while finishing (its phase already done), an offline distill run again finishes
    without computing the teacher's soft targets a second time."""
    from kerascv_emotion import distillation, training

    class Killed(Exception):
        pass

    passes: list[int] = []
    teacher_pass, finish = distillation.offline_soft_targets, training.finish_run
    monkeypatch.setattr(distillation, "offline_soft_targets", lambda *a, **k: passes.append(1) or teacher_pass(*a, **k))

    def killed(*args: object, **kwargs: object) -> None:
        raise Killed

    out = tmp_path / "student"
    args = ["distill", str(tiny_run), "--arch", "mobilenet", "--arch-option", "alpha=0.25", "--out", str(out),
            "--image-size", "24", "--epochs", "1", "--batch-size", "8", "--augment", "none",
            "--precise-bn-images", "0", "--soft-targets", "offline"]
    monkeypatch.setattr(training, "finish_run", killed)
    assert isinstance(CliRunner().invoke(main, args).exception, Killed)
    assert passes == [1] and training.phase_done_file(out / "work", "train").is_file()
    monkeypatch.setattr(training, "finish_run", finish)
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0 and (out / "model.keras").is_file(), result.output
    assert passes == [1]
