"""Prior correction (kerascv_emotion.priors): log training frequencies added to the output bias
of a balanced-weight classifier, by `train --prior-correction` or `correct-prior RUN --out DIR`."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kerascv_emotion.cli import main
from kerascv_emotion.errors import ConfigError, DataError
from kerascv_emotion.priors import CLASS_PRIOR_KEY, class_prior, shift_output_bias
from kerascv_emotion.runs import CALIBRATION, read_config
from kerascv_emotion.settings import TrainSettings


def _renormalised(probabilities: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """``p * prior`` per row ``(N, K)``, rows summing to 1."""
    weighted = probabilities * prior
    return weighted / weighted.sum(axis=1, keepdims=True)


def test_class_prior_counts_an_absent_class_as_one_image() -> None:
    prior = class_prior(np.array([0, 0, 0, 1, 1, 1, 1, 1]), 3)
    np.testing.assert_allclose(prior, np.array([3, 5, 1]) / 9)


def test_shifted_bias_multiplies_the_probabilities_by_the_prior() -> None:
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(inputs))
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    before = np.asarray(model.predict_on_batch(x), dtype=np.float64)
    prior = np.array([0.7, 0.2, 0.1])
    shift_output_bias(model, prior)
    np.testing.assert_allclose(model.predict_on_batch(x), _renormalised(before, prior), atol=1e-6)
    regressor = keras.Model(inputs, keras.layers.Dense(2, name="predictions")(inputs))
    with pytest.raises(DataError, match="softmax Dense layer 'predictions'"):
        shift_output_bias(regressor, np.array([0.5, 0.5]))


@pytest.fixture(scope="module")
def skewed_faces(tiny_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny_faces`` with one training image of every class but the first two dropped, so the
    training mix is skewed (2, 2, 1, 1, ...); returns its index.csv."""
    root = tmp_path_factory.mktemp("skewed") / "faces"
    shutil.copytree(tiny_faces.parent, root)
    with open(root / "index.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    kept, seen = [], set()
    for row in rows:
        if row["split"] == "train":
            if row["label"] not in ("anger", "contempt") and row["label"] in seen:
                continue
            seen.add(row["label"])
        kept.append(row)
    with open(root / "index.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    return root / "index.csv"


def _train(index: Path, out: Path, **options: object) -> Path:
    from kerascv_emotion.training import train

    settings = TrainSettings(arch="mobilenet", index=str(index), image_size=32, epochs=2, batch_size=8,
                             augment=None, precise_bn_images=0, deterministic=True,
                             arch_kwargs={"alpha": 0.25}, **options)
    return train(settings, out, verbose=0)


def _outputs(run: Path) -> np.ndarray:
    """The raw probabilities ``(N, K)`` of the run's model on its validation images."""
    from kerascv_emotion.data.cache import load_split
    from kerascv_emotion.data.index import read_index
    from kerascv_emotion.inference import predict_batches
    from kerascv_emotion.runs import load_model

    config = read_config(run)
    val = load_split(read_index(config["index"]), "val", 32, 3, cache_dir=Path(config["index"]).parent / ".cache")
    return predict_batches(load_model(run / "model.keras"), val.images, 8)


def test_correct_prior_and_train_with_it_give_the_same_model(skewed_faces: Path, tmp_path: Path) -> None:
    """`correct-prior` of a balanced run = that run's probabilities times the training mix; and
    `train --prior-correction` (same seed, deterministic) writes that same model."""
    plain = _train(skewed_faces, tmp_path / "plain")
    result = CliRunner().invoke(main, ["correct-prior", str(plain), "--out", str(tmp_path / "fixed")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    fixed = tmp_path / "fixed"
    prior = np.array(read_config(fixed)[CLASS_PRIOR_KEY])
    np.testing.assert_allclose(prior[:3], [2 / 10, 2 / 10, 1 / 10])
    np.testing.assert_allclose(_outputs(fixed), _renormalised(_outputs(plain), prior), atol=1e-5)
    assert read_config(fixed)["prior_correction"] is True and (fixed / CALIBRATION).is_file()
    assert (fixed / "history.csv").read_text() == (plain / "history.csv").read_text()

    trained = _train(skewed_faces, tmp_path / "trained", prior_correction=True)
    assert read_config(trained)[CLASS_PRIOR_KEY] == read_config(fixed)[CLASS_PRIOR_KEY]
    np.testing.assert_allclose(_outputs(trained), _outputs(fixed), atol=1e-5)
    assert json.loads((trained / CALIBRATION).read_text())["temperature"] > 0

    again = CliRunner().invoke(main, ["correct-prior", str(fixed), "--out", str(tmp_path / "twice")])
    assert again.exit_code != 0 and "already prior-corrected" in again.output
    assert len(again.output.strip().splitlines()) == 1 and not (tmp_path / "twice").exists()


def test_correct_prior_refuses_runs_without_balanced_weights(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "unweighted"
    shutil.copytree(tiny_run, run)
    config = read_config(run)
    (run / "config.json").write_text(json.dumps({**config, "class_weight": None}))
    result = CliRunner().invoke(main, ["correct-prior", str(run), "--out", str(tmp_path / "out")])
    assert result.exit_code != 0 and "class_weight=None" in result.output
    with pytest.raises(ConfigError, match="prior_correction needs"):
        TrainSettings(arch="vgg", index="i.csv", class_weight=None, prior_correction=True).check()


def test_soft_targets_follow_the_students_class_mix(skewed_faces: Path, tmp_path: Path) -> None:
    """A prior-corrected teacher's probabilities, moved to the balanced mix a balanced-weight
    student learns, are the uncorrected run's; `distill` (offline soft targets, which are
    those moved outputs) records the teacher's mix; an ensemble
    of a corrected and an uncorrected member records "mixed", and distilling from it is refused
    in one line."""
    from kerascv_emotion.distillation import teacher_for
    from kerascv_emotion.inference import predict_batches
    from kerascv_emotion.priors import BALANCED, MIXED, TRAINING, class_mix, mix_shift
    from kerascv_emotion.runs import load_model, load_run_split

    plain = _train(skewed_faces, tmp_path / "plain")
    fixed = tmp_path / "fixed"
    assert CliRunner().invoke(main, ["correct-prior", str(plain), "--out", str(fixed)]).exit_code == 0
    assert (class_mix(plain), class_mix(fixed)) == (BALANCED, TRAINING)
    prior = np.array(read_config(fixed)[CLASS_PRIOR_KEY])
    assert mix_shift(TRAINING, TRAINING, prior, fixed) is None
    moved = teacher_for(load_model(fixed / "model.keras"), (32, 32, 3), mix_shift(TRAINING, BALANCED, prior, fixed))
    val = load_run_split(read_config(fixed), "val")
    np.testing.assert_allclose(predict_batches(moved, val.images, 8), _outputs(plain), atol=1e-5)

    runner = CliRunner()
    common = ["--arch", "mobilenet", "--arch-option", "alpha=0.25", "--epochs", "1", "--batch-size", "8",
              "--augment", "none", "--precise-bn-images", "0"]
    result = runner.invoke(main, ["distill", str(fixed), "--out", str(tmp_path / "student"), *common,
                                  "--soft-targets", "offline"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    student = read_config(tmp_path / "student")
    assert (student["teacher_class_mix"], student["soft_targets"]) == (TRAINING, "offline")
    assert "distillation_loss" in (tmp_path / "student" / "history.csv").read_text().splitlines()[0]

    result = runner.invoke(main, ["ensemble", str(plain), str(fixed), "--out", str(tmp_path / "both")],
                           catch_exceptions=False)
    assert result.exit_code == 0 and read_config(tmp_path / "both")["class_mix"] == MIXED
    result = runner.invoke(main, ["distill", str(tmp_path / "both"), "--out", str(tmp_path / "refused"), *common])
    assert result.exit_code != 0 and "follow no single class mix" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
