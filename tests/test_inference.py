"""kerascv_emotion.inference without Keras: the input scaling, the batches a model is called
with, the mean over TTA views and the finite-output check."""

from __future__ import annotations

import numpy as np
import pytest

from kerascv_emotion.errors import ConfigError, DataError
from kerascv_emotion.inference import predict_batches, to_input


class _Recorder:
    """A stand-in model: records each batch; its output is each image's mean and first pixel."""

    def __init__(self, bad: int | None = None) -> None:
        self.batches: list[np.ndarray] = []
        self.bad = bad

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        self.batches.append(x)
        out = np.stack([x.mean(axis=(1, 2, 3)), x[:, 0, 0, 0]], axis=1)
        if self.bad is not None and len(self.batches) == 1:
            out[self.bad] = np.nan
        return out


def test_to_input_scales_uint8_to_float32_unit_range() -> None:
    images = np.array([[[[0], [255]], [[51], [102]]]], dtype=np.uint8)
    x = to_input(images)
    assert x.dtype == np.float32 and x.shape == images.shape
    np.testing.assert_array_equal(x.ravel(), np.float32([0, 255, 51, 102]) / np.float32(255))
    np.testing.assert_array_equal(to_input(list(images)), x)


def test_batches_are_in_order_and_hflip_averages_the_mirror() -> None:
    images = np.random.default_rng(0).integers(0, 256, (7, 3, 3, 1), dtype=np.uint8)
    model = _Recorder()
    plain = predict_batches(model, images, batch_size=3)
    assert [len(b) for b in model.batches] == [3, 3, 1] and plain.dtype == np.float64
    np.testing.assert_array_equal(np.concatenate(model.batches), to_input(images))
    mirrored = _Recorder().predict_on_batch(to_input(images)[:, :, ::-1])
    np.testing.assert_allclose(predict_batches(_Recorder(), images, 3, "hflip"), (plain + mirrored) / 2)
    runner = _Recorder()  # any function of a float32 batch
    np.testing.assert_array_equal(predict_batches(runner.predict_on_batch, images, 3), plain)


def test_non_finite_outputs_and_bad_options_are_one_line_errors() -> None:
    images = np.zeros((4, 2, 2, 1), dtype=np.uint8)
    assert np.isnan(predict_batches(_Recorder(bad=1), images, 2)).any()  # no source: no check
    with pytest.raises(DataError, match=r"m\.keras gives NaN or infinite outputs for 1 of 4 images"):
        predict_batches(_Recorder(bad=1), images, 2, source="m.keras")
    with pytest.raises(DataError, match="tta='flip' is not one of"):
        predict_batches(_Recorder(), images, 2, "flip")
    with pytest.raises(ConfigError, match="batch_size=0"):
        predict_batches(_Recorder(), images, 0)
    with pytest.raises(DataError, match="no images to predict"):
        predict_batches(_Recorder(), images[:0], 2)
