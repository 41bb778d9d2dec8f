"""Decode-once cache (reuse, invalidation, concurrency) and the ImageBatches PyDataset."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from kerascv_emotion.data import cache as cache_mod  # noqa: E402
from kerascv_emotion.data.cache import CACHE_ENV, CachedSplit, load_split  # noqa: E402
from kerascv_emotion.data.images import load_image  # noqa: E402
from kerascv_emotion.data.index import DatasetIndex, IndexRecord, read_index  # noqa: E402
from kerascv_emotion.data.loader import ImageBatches, class_weights  # noqa: E402
from kerascv_emotion.errors import BadImageError, ConfigError, DataError  # noqa: E402

CLASSES = ["anger", "happy", "sad"]


def _make_index(tmp_path: Path, n: int = 9, va: bool = False) -> DatasetIndex:
    """``n`` random 12x12 PNGs under tmp_path/ds, labels cycling over CLASSES, all in train."""
    root = tmp_path / "ds"
    root.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(root / f"img{i}.png")
        records.append(IndexRecord(
            path=f"img{i}.png", split="train", label=CLASSES[i % 3],
            valence=(i / n - 0.5) if va else None, arousal=(0.5 - i / n) if va else None,
        ))
    return DatasetIndex(root, CLASSES, records)


class _CountingLoad:
    """Wraps load_image and counts decodes (thread-safe)."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, *args: object, **kwargs: object) -> np.ndarray:
        with self.lock:
            self.calls += 1
        return load_image(*args, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> _CountingLoad:
    c = _CountingLoad()
    monkeypatch.setattr(cache_mod, "load_image", c)
    return c


# ---------------------------------------------------------------- cache
def test_cache_contents_match_direct_decode(tmp_path: Path) -> None:
    index = _make_index(tmp_path, va=True)
    cached = load_split(index, "train", (8, 10), cache_dir=tmp_path / "c", progress=False, workers=2)
    assert isinstance(cached.images, np.memmap) and not cached.images.flags.writeable
    assert cached.images.shape == (9, 8, 10, 3) and cached.images.dtype == np.uint8
    for i, rec in enumerate(index.records):
        np.testing.assert_array_equal(cached.images[i], load_image(index.resolve(rec), (8, 10)))
    np.testing.assert_array_equal(cached.label_ids, index.label_ids())
    assert cached.label_ids.dtype == np.int64
    np.testing.assert_allclose(cached.valence_arousal, index.valence_arousal())
    assert cached.valence_arousal.dtype == np.float32
    assert cached.paths == [r.path for r in index.records] and cached.class_names == CLASSES
    gray = load_split(index, "train", 8, channels=1, cache_dir=tmp_path / "c", progress=False)
    assert gray.images.shape == (9, 8, 8, 1) and gray.valence_arousal is not None


def test_cache_reused_without_decoding(tmp_path: Path, counter: _CountingLoad) -> None:
    index = _make_index(tmp_path)
    first = load_split(index, "train", 8, cache_dir=tmp_path / "c", progress=False)
    assert counter.calls == 9
    files = sorted((tmp_path / "c").iterdir())
    mtimes = [f.stat().st_mtime_ns for f in files]
    second = load_split(index, "train", 8, cache_dir=tmp_path / "c", progress=False)
    assert counter.calls == 9, "a reused cache must not decode again"
    assert [f.stat().st_mtime_ns for f in sorted((tmp_path / "c").iterdir())] == mtimes
    np.testing.assert_array_equal(first.images, second.images)


def test_cache_invalidated_by_index_and_size(tmp_path: Path, counter: _CountingLoad) -> None:
    index = _make_index(tmp_path)
    load_split(index, "train", 8, cache_dir=tmp_path / "c", progress=False)
    relabelled = index.with_records([*index.records[:-1], IndexRecord("img8.png", "train", "anger")])
    cached = load_split(relabelled, "train", 8, cache_dir=tmp_path / "c", progress=False)
    assert counter.calls == 18 and cached.label_ids[-1] == 0
    load_split(index, "train", 10, cache_dir=tmp_path / "c", progress=False)
    assert counter.calls == 27
    load_split(index, "train", 8, channels=1, cache_dir=tmp_path / "c", progress=False)
    assert counter.calls == 36
    load_split(index, "train", 8, cache_dir=tmp_path / "c", progress=False)  # the first one, still there
    assert counter.calls == 36


def test_cache_rebuilt_when_file_damaged(tmp_path: Path, counter: _CountingLoad) -> None:
    index = _make_index(tmp_path)
    first = load_split(index, "train", 8, cache_dir=tmp_path / "c", progress=False)
    expected = np.array(first.images)
    del first
    npy = next((tmp_path / "c").glob("*.npy"))
    npy.write_bytes(npy.read_bytes()[:200])
    again = load_split(index, "train", 8, cache_dir=tmp_path / "c", progress=False)
    assert counter.calls == 18
    np.testing.assert_array_equal(again.images, expected)


def test_cache_folder_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = _make_index(tmp_path)
    csv_path = index.write(tmp_path / "indexes" / "faces.csv")
    monkeypatch.delenv(CACHE_ENV, raising=False)
    cached = load_split(csv_path, "train", 8, progress=False)
    assert cached.cache_file is not None and cached.cache_file.parent == tmp_path / "indexes" / ".cache"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env_cache"))
    assert load_split(csv_path, "train", 8, progress=False).cache_file.parent == tmp_path / "env_cache"
    explicit = load_split(read_index(csv_path), "train", 8, cache_dir=tmp_path / "arg", progress=False)
    assert explicit.cache_file.parent == tmp_path / "arg"


def test_skip_list_persisted_with_cache(tmp_path: Path, counter: _CountingLoad) -> None:
    index = _make_index(tmp_path)
    (index.root / "img4.png").write_bytes(b"")
    first = load_split(index, "train", 8, cache_dir=tmp_path / "c", progress=False)
    reused = load_split(index, "train", 8, cache_dir=tmp_path / "c", progress=False)
    assert counter.calls == 9
    assert reused.skipped == first.skipped == [{"path": "img4.png", "reason": "empty file (0 bytes)"}]
    assert len(reused) == 8 and "img4.png" not in reused.paths
    np.testing.assert_array_equal(reused.label_ids, np.delete(index.label_ids(), 4))
    with pytest.raises(BadImageError, match="img4.png"):
        load_split(index, "train", 8, cache_dir=tmp_path / "c", on_bad_image="fail", progress=False)


def test_all_images_bad_and_bad_settings(tmp_path: Path) -> None:
    index = _make_index(tmp_path, n=2)
    for rec in index.records:
        index.resolve(rec).write_bytes(b"junk")
    with pytest.raises(DataError, match="every image"):
        load_split(index, "train", 8, cache_dir=tmp_path / "c", progress=False)
    with pytest.raises(ConfigError, match="on_bad_image"):
        load_split(index, "train", 8, on_bad_image="ignore", cache_dir=tmp_path / "c")
    with pytest.raises(DataError, match="no images"):
        load_split(index, "test", 8, cache_dir=tmp_path / "c")


def test_concurrent_builds_do_not_corrupt(tmp_path: Path) -> None:
    index = _make_index(tmp_path, n=30)
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(
            lambda _: np.array(load_split(index, "train", 8, cache_dir=tmp_path / "c", progress=False, workers=1).images),
            range(3),
        ))
    final = load_split(index, "train", 8, cache_dir=tmp_path / "c", progress=False)
    for r in results:
        np.testing.assert_array_equal(r, final.images)
    assert sorted(p.suffix for p in (tmp_path / "c").iterdir()) == [".json", ".npy"]  # no temp files left


def test_progress_bar_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load_split(_make_index(tmp_path), "train", 8, cache_dir=tmp_path / "c", progress=True)
    assert "9/9" in capsys.readouterr().err


# ---------------------------------------------------------------- batches
def _cached(n: int = 10, images: np.ndarray | None = None, va: bool = False) -> CachedSplit:
    rng = np.random.default_rng(1)
    if images is None:
        images = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    labels = np.arange(len(images), dtype=np.int64) % 3
    vals = rng.uniform(-1, 1, (len(images), 2)).astype(np.float32) if va else None
    return CachedSplit(images, labels, vals, [f"{i}.png" for i in range(len(images))], CLASSES, [], "train")


def test_batches_classification() -> None:
    cached = _cached(10)
    ds = ImageBatches(cached, batch_size=4, shuffle=False)
    assert len(ds) == 3
    x, y = ds[0]
    assert x.dtype == np.float32 and x.shape == (4, 8, 8, 3)
    np.testing.assert_allclose(x, cached.images[:4] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, np.eye(3, dtype=np.float32)[[0, 1, 2, 0]])
    assert ds[2][0].shape == (2, 8, 8, 3)
    with pytest.raises(IndexError):
        ds[3]


def test_soft_targets_ride_beside_the_labels_and_mix_alike() -> None:
    """``y`` = [one-hot, soft targets] of the same images, in the epoch's order; mixup mixes
    both halves with one weight, so each keeps summing to 1; the tf.data stream carries them."""
    cached = _cached(12)
    soft = np.random.default_rng(2).dirichlet(np.ones(3), size=12).astype(np.float32)
    batches = ImageBatches(cached, batch_size=5, seed=4, mixup_alpha=0.4)
    batches.set_soft_targets(soft)
    order = batches._epoch_order(0)[:5]
    _, y = batches.batch_arrays(0, 0)
    np.testing.assert_array_equal(y, np.concatenate([np.eye(3)[cached.label_ids[order]], soft[order]], axis=1))
    _, mixed = batches.batch_arrays(0, 0, mix=True)
    assert not np.allclose(mixed, y)
    np.testing.assert_allclose(mixed[:, :3].sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(mixed[:, 3:].sum(1), 1.0, rtol=1e-6)
    streamed = next(iter(batches.as_tf_dataset()))[1].numpy()
    np.testing.assert_array_equal(streamed, mixed)
    with pytest.raises(ConfigError, match="soft targets of shape"):
        batches.set_soft_targets(soft[:, :2])
    with pytest.raises(DataError, match="not probabilities: they have (rows that do not sum to 1|values outside)"):
        batches.set_soft_targets(soft * 2)
    with pytest.raises(DataError, match="not probabilities: they have NaN or infinite values"):
        batches.set_soft_targets(np.where(np.arange(soft.size).reshape(soft.shape) == 0, np.nan, soft))
    batches.set_soft_targets(None)
    assert batches.batch_arrays(0, 0)[1].shape == (5, 3)


def test_batches_regression_and_checks() -> None:
    cached = _cached(6, va=True)
    x, y = ImageBatches(cached, batch_size=6, task="regression", shuffle=False)[0]
    assert y.dtype == np.float32 and y.shape == (6, 2)
    np.testing.assert_array_equal(y, cached.valence_arousal)
    with pytest.raises(DataError, match="valence"):
        ImageBatches(_cached(6), task="regression")
    with pytest.raises(ConfigError, match="task"):
        ImageBatches(cached, task="ranking")
    with pytest.raises(ConfigError, match="unknown augmentation"):
        ImageBatches(cached, augment="heavy")


def test_class_weights_balanced() -> None:
    labels = np.array([0, 0, 0, 1, 2, 2])
    w = class_weights(labels, 4)
    assert w == pytest.approx({0: 6 / (3 * 3), 1: 6 / (3 * 1), 2: 6 / (3 * 2), 3: 1.0})
    with pytest.raises(DataError):
        class_weights(np.array([0, 5]), 3)


def test_batches_with_sample_weight() -> None:
    cached = _cached(6)
    weights = {0: 0.5, 1: 2.0, 2: 3.0}
    x, y, sw = ImageBatches(cached, batch_size=6, shuffle=False, class_weight=weights)[0]
    np.testing.assert_array_equal(sw, np.array([0.5, 2.0, 3.0, 0.5, 2.0, 3.0], dtype=np.float32))
    assert sw.dtype == np.float32
    with pytest.raises(ConfigError, match="missing \\[2\\]"):
        ImageBatches(cached, class_weight={0: 1.0, 1: 1.0})


def _epoch(ds: ImageBatches) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*(ds[i][:2] for i in range(len(ds))), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def test_shuffle_reproducible_and_reshuffled_each_epoch() -> None:
    cached = _cached(12)
    a, b = ImageBatches(cached, batch_size=5, seed=3), ImageBatches(cached, batch_size=5, seed=3)
    xa, ya = _epoch(a)
    xb, _ = _epoch(b)
    np.testing.assert_array_equal(xa, xb)
    flat = cached.images.reshape(12, -1) / np.float32(255)
    seen = sorted(int(np.argmin(np.abs(flat - row.reshape(1, -1)).sum(1))) for row in xa)
    assert seen == list(range(12)), "every image exactly once per epoch"
    assert not np.array_equal(xa, cached.images / np.float32(255)), "shuffled"
    a.on_epoch_end()
    x2, _ = _epoch(a)
    assert not np.array_equal(xa, x2)
    assert not np.array_equal(xa, _epoch(ImageBatches(cached, batch_size=5, seed=4))[0])


def test_augmentation_seeded_and_independent_of_worker() -> None:
    # 16 copies of one 32 px image (at 8 px a sub-pixel shift or small rotation can round two
    # different draws to the same pixels, as OpenCV 4.14's interpolation did)
    image = np.random.default_rng(2).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    same = np.repeat(image, 16, axis=0)
    cached = _cached(images=same)
    sequential = ImageBatches(cached, batch_size=2, augment="paper_face", seed=5)
    expected = [sequential[i][0] for i in range(len(sequential))]
    threaded = ImageBatches(cached, batch_size=2, augment="paper_face", seed=5, workers=2)
    with ThreadPoolExecutor(2) as pool:  # batches built by two threads in a scrambled order
        order = [7, 0, 5, 2, 3, 6, 1, 4]
        got = dict(zip(order, pool.map(lambda i: threaded[i][0], order), strict=True))
    for i in range(8):
        np.testing.assert_array_equal(got[i], expected[i])
    # no two augmented copies repeat each other, within an epoch or across epochs
    first_epoch = np.concatenate(expected)
    sequential.on_epoch_end()
    second_epoch = np.concatenate([sequential[i][0] for i in range(len(sequential))])
    both = np.concatenate([first_epoch, second_epoch]).reshape(32, -1)
    assert len({row.tobytes() for row in both}) == 32


def test_shape_changing_augmentation_rejected() -> None:
    cached = _cached(images=np.zeros((4, 6, 8, 3), dtype=np.uint8))
    spec = {"transforms": [{"type": "Transpose", "p": 1.0}]}
    with pytest.raises(ConfigError, match="square image_size"):
        ImageBatches(cached, batch_size=2, augment=spec)[0]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fit_with_worker_threads(tmp_path: Path) -> None:
    index = _make_index(tmp_path, n=12)
    cached = load_split(index, "train", 8, cache_dir=tmp_path / "c", progress=False)
    ds = ImageBatches(cached, batch_size=4, augment="paper_face", workers=2,
                      class_weight=class_weights(cached.label_ids, 3))
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy")
    history = model.fit(ds, epochs=2, verbose=0, shuffle=False)
    assert len(history.history["loss"]) == 2
    assert ds.epoch >= 2  # reshuffled after every epoch (Keras also calls on_epoch_end once up front)


@pytest.mark.parametrize("workers", [1, 2])
def test_tf_dataset_gives_the_same_batches(workers: int) -> None:
    """as_tf_dataset yields batch_arrays' batches (augmented, weighted, last one short), in order,
    epoch after epoch from the epoch set when iteration starts; chunks that split an epoch
    unevenly included."""
    rng = np.random.default_rng(1)
    cached = _cached(images=rng.integers(0, 256, (11, 6, 6, 3), dtype=np.uint8))
    ds = ImageBatches(cached, batch_size=2, augment="paper_face", seed=7, workers=workers,
                      class_weight={0: 1.0, 1: 2.0, 2: 3.0})
    ds.epoch = 3
    got = list(ds.as_tf_dataset(chunk_batches=4).take(2 * len(ds)).as_numpy_iterator())
    assert [len(b[0]) for b in got] == [2, 2, 2, 2, 2, 1] * 2
    for step, (x, y, sw) in enumerate(got):
        epoch, index = divmod(step, len(ds))
        want = ds.batch_arrays(3 + epoch, index)
        np.testing.assert_array_equal(x, want[0].astype(np.float32) / np.float32(255))
        np.testing.assert_array_equal(y, want[1])
        np.testing.assert_array_equal(sw, want[2])
    assert not np.array_equal(got[0][0], got[6][0]), "a new order and augmentation each epoch"
    with pytest.raises(ConfigError, match="chunk_batches"):
        ds.as_tf_dataset(chunk_batches=0)


@pytest.mark.filterwarnings("error::UserWarning")
def test_fit_on_tf_dataset_starts_at_fits_epoch(tmp_path: Path) -> None:
    """epoch_callback hands fit's epoch number (here initial_epoch=2) to the dataset, and the
    endless dataset with steps_per_epoch raises no 'ran out of data' warning."""
    cached = load_split(_make_index(tmp_path, n=12), "train", 8, cache_dir=tmp_path / "c", progress=False)
    ds = ImageBatches(cached, batch_size=4, augment="paper_face", seed=2)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy")
    seen = []
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(ds.epoch))
    history = model.fit(ds.as_tf_dataset(), steps_per_epoch=len(ds), epochs=4, initial_epoch=2, verbose=0,
                        shuffle=False, callbacks=[ds.epoch_callback(), record])
    assert len(history.history["loss"]) == 2 and seen == [2, 3]
