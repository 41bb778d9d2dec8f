"""Stream training batches from a :class:`~kerascv_emotion.data.cache.CachedSplit` into ``model.fit``.

``ImageBatches`` is a ``keras.utils.PyDataset``: Keras runs ``__getitem__`` in ``workers``
threads (or processes). Batch ``b`` of epoch ``e`` is a pure function of ``(seed, e, b)``:
the epoch's order is a permutation drawn from ``SeedSequence([seed, e])`` and the batch's
augmentations from ``SeedSequence([seed, e, b])``, so results are reproducible and do not
depend on which worker builds which batch, and no two batches or epochs share a random
stream. Each worker thread augments with its own copy of the pipeline.

Two ways to feed ``fit``:

- ``ImageBatches.as_tf_dataset()`` (what :mod:`kerascv_emotion.training` uses): an endless
  ``tf.data`` stream that builds a chunk of batches per Python call, one chunk ahead; pass
  ``steps_per_epoch=len(batches)`` and ``batches.epoch_callback()``;
- the ``PyDataset`` itself: simpler, but Keras then hands over one Python batch per step,
  which cost ~1.5x the CPU time per epoch of in-memory arrays on a 2-core machine.

Note: ``model.fit(shuffle=True)`` (Keras' default) also shuffles the *order* in which it
requests a ``PyDataset``'s batches, with Python's global ``random``; the dataset already
reshuffles every epoch, so pass ``shuffle=False`` to ``fit`` for runs that repeat exactly.
"""

from __future__ import annotations

import copy
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import albumentations as A
import keras
import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from kerascv_emotion.augment import AugmentSpec, get_augmentation, mix_batch, seed_augmentation
from kerascv_emotion.data.cache import CachedSplit
from kerascv_emotion.errors import ConfigError, DataError
from kerascv_emotion.inference import MAX_PIXEL, to_input
from kerascv_emotion.metrics.arrays import probability_rows_problem
from kerascv_emotion.tasks import TASKS


def class_weights(label_ids: np.ndarray, num_classes: int) -> dict[int, float]:
    """"Balanced" weights ``n / (k * count[c])`` per class id (scikit-learn's
    ``compute_class_weight``; ``k`` = classes present). Absent classes get 1.0.
    """
    label_ids = np.asarray(label_ids, dtype=np.int64)
    present = np.unique(label_ids)
    if present.size and (present[0] < 0 or present[-1] >= num_classes):
        raise DataError(f"label ids {present.tolist()} fall outside 0..{num_classes - 1}")
    weights = {c: 1.0 for c in range(num_classes)}
    if present.size:
        balanced = compute_class_weight("balanced", classes=present, y=label_ids)
        weights.update({int(c): float(w) for c, w in zip(present, balanced, strict=True)})
    return weights


class ImageBatches(keras.utils.PyDataset):
    """Batches ``(x, y)`` or ``(x, y, sample_weight)`` of a cached split.

    ``x`` float32 ``(B, H, W, C)`` in [0, 1]; ``y`` one-hot float32 ``(B, K)``
    (classification) or float32 ``(B, 2)`` valence/arousal (regression); ``sample_weight``
    float32 ``(B,)`` = ``class_weight[label_id]`` when ``class_weight`` is given.
    ``augment`` is anything :func:`kerascv_emotion.augment.get_augmentation` accepts; it
    must keep the image shape. The last batch of an epoch may be smaller.

    ``mixup_alpha`` / ``cutmix_alpha`` > 0 mix each batch of the training stream
    (:meth:`as_tf_dataset`) with a shuffled copy of itself (:func:`kerascv_emotion.augment.mix_batch`,
    drawn from ``SeedSequence([seed, e, b, 1])``); ``batches[i]`` (what PreciseBatchNorm reads)
    stays unmixed, so BatchNorm statistics are those of real images.

    :meth:`set_soft_targets` appends each image's soft targets to its label: ``y`` float32
    ``(B, 2K)`` = ``[one-hot, soft]``, the two halves mixed alike.
    """

    def __init__(
        self,
        cached: CachedSplit,
        batch_size: int = 32,
        task: str = "classification",
        augment: AugmentSpec = None,
        shuffle: bool = True,
        seed: int = 0,
        class_weight: dict[int, float] | None = None,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
    ) -> None:
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        if task not in TASKS:
            raise ConfigError(f"task={task!r}: use one of {TASKS}")
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size}: use 1 or more")
        if len(cached) == 0:
            raise DataError(f"split {cached.split!r} has no images to batch")
        if task == "regression" and cached.valence_arousal is None:
            raise DataError(f"split {cached.split!r} has no valence/arousal for every image; a regression task needs them")
        self.cached = cached
        self.batch_size = batch_size
        self.task = task
        self.augment = get_augmentation(augment)
        self.shuffle = shuffle
        self.seed = seed
        self.mixup_alpha = float(mixup_alpha)
        self.cutmix_alpha = float(cutmix_alpha)
        self.epoch = 0
        self._sample_weight: np.ndarray | None = None
        if class_weight is not None:
            missing = sorted(set(np.unique(cached.label_ids).tolist()) - set(class_weight))
            unknown = sorted(c for c in class_weight if not 0 <= int(c) < cached.num_classes)
            if missing or unknown:
                raise ConfigError(
                    f"class_weight must map every class id 0..{cached.num_classes - 1} present in the "
                    f"split to a weight; missing {missing}, unknown {unknown}"
                )
            self._sample_weight = np.zeros(cached.num_classes, dtype=np.float32)
            for c, w in class_weight.items():
                self._sample_weight[int(c)] = w
        self.soft_targets: np.ndarray | None = None
        self._local = threading.local()
        self._orders: dict[int, np.ndarray] = {}

    def set_soft_targets(self, probabilities: np.ndarray | None) -> None:
        """Give every image soft targets, ``probabilities`` ``(N, K)`` in the cached order (a
        teacher's outputs; rows summing to 1), carried beside its one-hot label in ``y``;
        ``None`` removes them. Classification only."""
        if probabilities is None:
            self.soft_targets = None
            return
        probabilities = np.asarray(probabilities, dtype=np.float32)
        shape = (len(self.cached), self.cached.num_classes)
        if self.task != "classification" or probabilities.shape != shape:
            raise ConfigError(f"soft targets of shape {probabilities.shape} for split {self.cached.split!r}: "
                              f"give {shape} probabilities of a classification task")
        problem = probability_rows_problem(probabilities)
        if problem is not None:
            raise DataError(f"soft targets for split {self.cached.split!r} are not probabilities: they have {problem}")
        self.soft_targets = probabilities

    def __len__(self) -> int:
        return -(-len(self.cached) // self.batch_size)

    def _epoch_order(self, epoch: int) -> np.ndarray:
        n = len(self.cached)
        if not self.shuffle:
            return np.arange(n)
        cached = self._orders.get(epoch)
        if cached is None:
            cached = np.random.default_rng(np.random.SeedSequence([self.seed, epoch])).permutation(n)
            self._orders = {epoch: cached}  # the latest epoch's order only
        return cached

    def on_epoch_end(self) -> None:
        """Advance to the next epoch: new order, new augmentation streams.

        ``epoch`` counts these calls; ``fit`` also makes one before its first epoch.
        """
        self.epoch += 1

    def _thread_augment(self) -> A.Compose:
        """This thread's own copy of the augmentation pipeline."""
        aug = getattr(self._local, "augment", None)
        if aug is None:
            aug = self._local.augment = copy.deepcopy(self.augment)
        return aug

    def _augment_batch(self, images: np.ndarray, epoch: int, index: int) -> np.ndarray:
        aug = seed_augmentation(self._thread_augment(), np.random.SeedSequence([self.seed, epoch, index]))
        out = np.empty_like(images)
        for i, image in enumerate(images):
            result = aug(image=image)["image"]
            if result.shape != image.shape:
                raise ConfigError(
                    f"augmentation changed an image's shape from {image.shape} to {result.shape}; "
                    "use a square image_size with covid_paper, or a shape-preserving pipeline"
                )
            out[i] = result
        return out

    def batch_arrays(self, epoch: int, index: int, mix: bool = False) -> tuple[np.ndarray, ...]:
        """Batch ``index`` of ``epoch`` as ``(images, y)`` or ``(images, y, sample_weight)``,
        ``images`` uint8 ``(B, H, W, C)``; a pure function of ``(seed, epoch, index)``. ``mix``:
        mixup/cutmix it as the training stream does (no-op when both alphas are 0)."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range 0..{len(self) - 1}")
        order = self._epoch_order(epoch)[index * self.batch_size:(index + 1) * self.batch_size]
        images = np.asarray(self.cached.images[order])
        if self.augment is not None:
            images = self._augment_batch(images, epoch, index)
        labels = self.cached.label_ids[order]
        if self.task == "classification":
            y = np.eye(self.cached.num_classes, dtype=np.float32)[labels]
            if self.soft_targets is not None:
                y = np.concatenate([y, self.soft_targets[order]], axis=1)
        else:
            y = np.asarray(self.cached.valence_arousal[order], dtype=np.float32)
        weights = None if self._sample_weight is None else self._sample_weight[labels]
        if mix:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, index, 1]))
            images, y, weights = mix_batch(images, y, weights, rng, self.mixup_alpha, self.cutmix_alpha)
        return (images, y) if weights is None else (images, y, weights)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        images, *rest = self.batch_arrays(self.epoch, index)
        return (to_input(images), *rest)

    def as_tf_dataset(self, chunk_batches: int = 16) -> Any:
        """These batches as an endless ``tf.data.Dataset``, epoch after epoch, for
        ``model.fit(dataset, steps_per_epoch=len(self), callbacks=[self.epoch_callback(), ...])``.

        Python builds ``chunk_batches`` batches per call (with ``workers`` threads), one chunk
        ahead of the model, so the model waits neither on Python nor on a per-batch hand-over
        (feeding the ``PyDataset`` itself costs ~1.5x the CPU time of in-memory arrays on a
        2-core machine; see benchmarks/README.md). Element ``i`` of epoch ``e`` is
        ``batch_arrays(e, i, mix=True)`` with the images scaled to float32 [0, 1]; the first epoch is
        :attr:`epoch` when iteration starts (``epoch_callback`` sets it to ``fit``'s epoch,
        also after a resume from a backup). Memory: two chunks of uint8 images.
        """
        import tensorflow as tf

        if chunk_batches < 1:
            raise ConfigError(f"chunk_batches={chunk_batches}: use 1 or more")
        n_batches = len(self)
        n_chunks = -(-n_batches // chunk_batches)
        height, width, channels = self.cached.images.shape[1:]
        if self.task == "regression":
            y_width = 2  # valence, arousal
        else:  # one-hot labels, then the soft targets when set
            y_width = self.cached.num_classes * (1 if self.soft_targets is None else 2)
        types = [tf.uint8, tf.float32] + ([tf.float32] if self._sample_weight is not None else [])
        first_epoch = [self.epoch]

        def chunk(counter: np.int64) -> list[np.ndarray]:
            if counter == 0:
                first_epoch[0] = self.epoch
            epochs_in, c = divmod(int(counter), n_chunks)
            epoch = first_epoch[0] + epochs_in
            indices = range(c * chunk_batches, min((c + 1) * chunk_batches, n_batches))
            if self.workers > 1:
                with ThreadPoolExecutor(self.workers) as pool:
                    parts = list(pool.map(lambda b: self.batch_arrays(epoch, b, mix=True), indices))
            else:
                parts = [self.batch_arrays(epoch, b, mix=True) for b in indices]
            return [np.concatenate(column) for column in zip(*parts, strict=True)]

        def load(counter: tf.Tensor) -> tuple[tf.Tensor, ...]:
            tensors = tf.numpy_function(chunk, [counter], types, stateful=True)
            shapes = [(None, height, width, channels), (None, y_width), (None,)]
            for tensor, shape in zip(tensors, shapes, strict=False):
                tensor.set_shape(shape)
            return tuple(tensors)

        def scale(images: tf.Tensor, *rest: tf.Tensor) -> tuple[tf.Tensor, ...]:
            return (tf.cast(images, tf.float32) / MAX_PIXEL, *rest)

        # chunks hold whole batches (only an epoch's last batch is short), so re-batching inside
        # each chunk restores batch_arrays' batches exactly
        dataset = tf.data.Dataset.counter().map(load).prefetch(1)
        dataset = dataset.flat_map(lambda *t: tf.data.Dataset.from_tensor_slices(t).batch(self.batch_size))
        return dataset.map(scale).prefetch(2)

    def epoch_callback(self) -> keras.callbacks.Callback:
        """A callback setting :attr:`epoch` to ``fit``'s epoch number at each epoch's start
        (for :meth:`as_tf_dataset`, whose first epoch it fixes, after a resume too)."""
        batches = self

        class SetEpoch(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
                batches.epoch = epoch

        return SetEpoch()
