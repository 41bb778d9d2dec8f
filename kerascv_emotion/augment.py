"""Image augmentation with albumentations 2.0.x: named pipelines, user pipelines, config dicts.

Named pipelines (all work on uint8 ``(H, W, C)`` images and keep their shape, except that
``covid_paper``'s 90/270 degree rotations swap H and W, so it needs square images):

* ``paper_face`` -- Hewitt & Gunes (2018): rotation up to +-20 degrees, shift up to +-10%
  of width/height (borders filled by repeating the edge, like Keras'
  ``ImageDataGenerator(fill_mode="nearest")``), horizontal flip with p=0.5.
* ``covid_paper`` -- Reshi et al. (2021): each call returns one of exactly five variants,
  uniformly: the original, its horizontal mirror, or the original rotated by exactly
  90, 180 or 270 degrees counter-clockwise.
* ``crop_erase`` -- for small face crops (FER2013's 48 px; after Khaireddin & Chen 2021): a
  random crop of 80-100 % of the side resized back (an affine zoom of 1-1.25 with a +-10 %
  shift and +-10 degrees), horizontal flip (p=0.5) and random erasing (Zhong et al. 2020: one
  rectangle of 10-40 % of each side filled with noise, p=0.5).
* ``light`` -- mirror (p=0.5), small affine (+-10 degrees, +-5% shift, 0.95-1.05 zoom;
  p=0.5) and +-10% brightness/contrast (p=0.5).
* ``none`` -- no augmentation (``get_augmentation`` returns None).

Config dicts (the workflow's YAML): ``{"name": "paper_face"}``; or a list of transforms
``{"transforms": [{"type": "HorizontalFlip", "p": 0.5}, {"type": "OneOf", "p": 1,
"transforms": [...]}]}`` (``type`` is an albumentations class name, the other keys its
arguments; ``p`` is required, and unknown arguments are errors, not albumentations'
warnings); or a dict written by ``albumentations.to_dict``.
"""

from __future__ import annotations

import copy
import random
import warnings
from collections.abc import Callable
from typing import Any

import albumentations as A
import cv2
import numpy as np

from kerascv_emotion.errors import ConfigError

AugmentSpec = str | dict[str, Any] | A.Compose | None


def _paper_face() -> A.Compose:
    return A.Compose([
        A.Affine(
            rotate=(-20, 20), translate_percent={"x": (-0.1, 0.1), "y": (-0.1, 0.1)},
            border_mode=cv2.BORDER_REPLICATE, p=1.0,
        ),
        A.HorizontalFlip(p=0.5),
    ])


def _covid_paper() -> A.Compose:
    # RandomRotate90 also draws 0 degrees; exact quarter turns are composed from
    # Transpose and flips: rot90 = transpose then vertical flip, rot270 = transpose then
    # horizontal flip, rot180 = both flips (np.rot90's counter-clockwise convention).
    return A.Compose([
        A.OneOf([
            A.NoOp(p=1.0),
            A.HorizontalFlip(p=1.0),
            A.Sequential([A.Transpose(p=1.0), A.VerticalFlip(p=1.0)], p=1.0),
            A.Sequential([A.HorizontalFlip(p=1.0), A.VerticalFlip(p=1.0)], p=1.0),
            A.Sequential([A.Transpose(p=1.0), A.HorizontalFlip(p=1.0)], p=1.0),
        ], p=1.0),
    ])


def _light() -> A.Compose:
    return A.Compose([
        A.HorizontalFlip(p=0.5),
        A.Affine(
            rotate=(-10, 10), translate_percent=(-0.05, 0.05), scale=(0.95, 1.05),
            border_mode=cv2.BORDER_REPLICATE, p=0.5,
        ),
        A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.1, p=0.5),
    ])


def _crop_erase() -> A.Compose:
    return A.Compose([
        A.Affine(
            scale=(1.0, 1.25), rotate=(-10, 10), translate_percent={"x": (-0.1, 0.1), "y": (-0.1, 0.1)},
            border_mode=cv2.BORDER_REPLICATE, p=1.0,
        ),
        A.HorizontalFlip(p=0.5),
        A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(0.1, 0.4), hole_width_range=(0.1, 0.4),
                        fill="random_uniform", p=0.5),
    ])


_NAMED: dict[str, Callable[[], A.Compose] | None] = {
    "paper_face": _paper_face,
    "covid_paper": _covid_paper,
    "crop_erase": _crop_erase,
    "light": _light,
    "none": None,
}


def available_augmentations() -> list[str]:
    """Names accepted by :func:`get_augmentation`, sorted."""
    return sorted(_NAMED)


def seed_augmentation(aug: A.Compose, seed: int | np.random.SeedSequence) -> A.Compose:
    """Give every transform of ``aug`` one shared random stream derived from ``seed`` (in place).

    albumentations 2.0.8's ``Compose(seed=s)`` seeds each transform with the same ``s``, so
    their draws coincide (two p=0.5 transforms then always fire together); sharing one
    generator keeps the draws independent and the whole sequence reproducible.
    """
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    py_seed, np_seed = ss.spawn(2)
    aug.set_random_state(np.random.default_rng(np_seed), random.Random(int(py_seed.generate_state(1)[0])))
    return aug


def _one_line(exc: BaseException) -> str:
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text if len(text) <= 300 else text[:297] + "..."


def _short_to_serialized(item: Any, where: str) -> dict[str, Any]:
    """``{"type": "HorizontalFlip", "p": 0.5}`` -> albumentations' ``__class_fullname__`` form."""
    if not isinstance(item, dict) or "type" not in item:
        raise ConfigError(f"augment {where}: each transform needs a 'type' (an albumentations class name), got {item!r}")
    out = {k: v for k, v in item.items() if k != "type"}
    out["__class_fullname__"] = item["type"]
    if "transforms" in out:
        out["transforms"] = [_short_to_serialized(t, f"{where}.transforms[{i}]") for i, t in enumerate(out["transforms"])]
    return out


def _from_dict(spec: dict[str, Any]) -> A.Compose | None:
    if "name" in spec:
        extra = sorted(set(spec) - {"name"})
        if extra:
            raise ConfigError(f"augment: a named pipeline takes no other keys, got {extra}")
        return _named(spec["name"])
    if "transforms" in spec:
        if not isinstance(spec["transforms"], list):
            raise ConfigError("augment: 'transforms' must be a list of {type: ..., ...} entries")
        body = {k: v for k, v in spec.items() if k != "transforms"}
        body["__class_fullname__"] = "Compose"
        body["transforms"] = [_short_to_serialized(t, f"transforms[{i}]") for i, t in enumerate(spec["transforms"])]
        serialized = {"__version__": A.__version__, "transform": body}
    elif "transform" in spec:
        serialized = spec
    else:
        raise ConfigError(
            f"augment: a config dict needs 'name' (one of {available_augmentations()}), "
            f"'transforms' (a list) or 'transform' (albumentations.to_dict output); got keys {sorted(spec)}"
        )
    try:
        with warnings.catch_warnings():
            # albumentations only warns about unknown arguments and a missing "p"; a typo
            # in a config file must not be ignored silently
            warnings.simplefilter("error", UserWarning)
            aug = A.from_dict(serialized)
    except KeyError as exc:
        raise ConfigError(f"augment: unknown albumentations transform {exc.args[0]!r}") from None
    except (ValueError, TypeError, UserWarning) as exc:
        raise ConfigError(f"augment: invalid transform settings: {_one_line(exc)}") from None
    if not isinstance(aug, A.Compose):
        raise ConfigError(f"augment: the top-level transform must be a Compose, got {type(aug).__name__}")
    return aug


def _named(name: Any) -> A.Compose | None:
    if name not in _NAMED:
        raise ConfigError(f"unknown augmentation {name!r}; use one of {available_augmentations()} or a config dict")
    factory = _NAMED[name]
    return factory() if factory is not None else None


def get_augmentation(spec: AugmentSpec, seed: int | None = None) -> A.Compose | None:
    """Build the augmentation for ``spec``: a name, a config dict, a Compose or None.

    Returns None for ``None``/``"none"``. A user Compose is copied, not modified. With
    ``seed`` the pipeline's random stream is seeded (:func:`seed_augmentation`), so two
    pipelines built with the same seed produce the same sequence of augmentations.
    """
    if spec is None:
        return None
    if isinstance(spec, A.Compose):
        aug: A.Compose | None = copy.deepcopy(spec)
    elif isinstance(spec, str):
        aug = _named(spec)
    elif isinstance(spec, dict):
        aug = _from_dict(spec)
    else:
        raise ConfigError(
            f"augment={spec!r}: give a name ({available_augmentations()}), a config dict or an albumentations.Compose"
        )
    if aug is not None and seed is not None:
        seed_augmentation(aug, seed)
    return aug


def mix_batch(images: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None, rng: np.random.Generator,
              mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Mix a batch with a shuffled copy of itself: mixup (Zhang et al. 2018) or cutmix (Yun et
    al. 2019), one ``lam ~ Beta(alpha, alpha)`` per batch; with both alphas > 0 each batch draws
    one of the two with p=0.5; with both 0 the batch is returned unchanged.

    ``images`` uint8 ``(B, H, W, C)``; ``y`` float32 ``(B, K)`` one-hot (or soft) labels,
    ``(B, 2K)`` labels with a teacher's soft targets beside them, or ``(B, 2)`` regression
    targets; ``sample_weight`` float32 ``(B,)`` or None. The targets and weights are mixed with
    the weight each source image has in the result (for cutmix the pasted box's exact area), so
    one-hot rows keep summing to 1. Mixed uint8 pixels are rounded.
    """
    methods = [m for m, alpha in (("mixup", mixup_alpha), ("cutmix", cutmix_alpha)) if alpha > 0]
    if not methods or len(images) < 2:
        return images, y, sample_weight
    method = methods[int(rng.integers(len(methods)))]
    partner = rng.permutation(len(images))
    if method == "mixup":
        lam = float(rng.beta(mixup_alpha, mixup_alpha))
        mixed = lam * images.astype(np.float32) + (1.0 - lam) * images[partner].astype(np.float32)
        images = np.clip(np.rint(mixed), 0, 255).astype(images.dtype)
    else:
        height, width = images.shape[1:3]
        cut = np.sqrt(1.0 - float(rng.beta(cutmix_alpha, cutmix_alpha)))
        cy, cx = int(rng.integers(height)), int(rng.integers(width))
        h, w = int(round(height * cut)), int(round(width * cut))
        top, bottom = max(cy - h // 2, 0), min(cy + (h - h // 2), height)
        left, right = max(cx - w // 2, 0), min(cx + (w - w // 2), width)
        images = images.copy()
        images[:, top:bottom, left:right] = images[partner, top:bottom, left:right]
        lam = 1.0 - (bottom - top) * (right - left) / (height * width)
    y = (lam * y + (1.0 - lam) * y[partner]).astype(np.float32)
    if sample_weight is not None:
        sample_weight = (lam * sample_weight + (1.0 - lam) * sample_weight[partner]).astype(np.float32)
    return images, y, sample_weight
