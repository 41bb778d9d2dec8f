"""Augmentation pipelines: names, config dicts, geometry, covid_paper variants, seeding."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from kerascv_emotion.augment import (
    available_augmentations,
    get_augmentation,
    seed_augmentation,
)
from kerascv_emotion.errors import ConfigError


def _img(h: int = 16, w: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _run(aug: A.Compose, image: np.ndarray, n: int) -> list[np.ndarray]:
    return [aug(image=image)["image"] for _ in range(n)]


def test_names() -> None:
    assert available_augmentations() == ["covid_paper", "crop_erase", "light", "none", "paper_face"]
    for name in ("paper_face", "crop_erase", "covid_paper", "light"):
        aug = get_augmentation(name, seed=0)
        assert isinstance(aug, A.Compose)
        assert aug(image=_img())["image"].shape == (16, 16, 3)
    assert get_augmentation("none") is None
    assert get_augmentation(None) is None
    assert get_augmentation({"name": "none"}) is None


def test_unknown_name_lists_names() -> None:
    with pytest.raises(ConfigError, match="paper_face") as info:
        get_augmentation("paper_faces")
    assert "covid_paper" in str(info.value) and "light" in str(info.value)
    with pytest.raises(ConfigError, match="unknown augmentation"):
        get_augmentation({"name": "heavy"})
    with pytest.raises(ConfigError):
        get_augmentation(42)  # type: ignore[arg-type]


def test_flip_is_exact_mirror_from_config_dict() -> None:
    aug = get_augmentation({"transforms": [{"type": "HorizontalFlip", "p": 1.0}]})
    image = _img(8, 12)
    np.testing.assert_array_equal(aug(image=image)["image"], image[:, ::-1])


def test_config_dict_errors() -> None:
    with pytest.raises(ConfigError, match="NoSuchTransform"):
        get_augmentation({"transforms": [{"type": "NoSuchTransform", "p": 1.0}]})
    with pytest.raises(ConfigError, match="invalid transform settings"):
        get_augmentation({"transforms": [{"type": "HorizontalFlip", "p": 1.0, "angle": 3}]})
    with pytest.raises(ConfigError, match="'p'"):
        get_augmentation({"transforms": [{"type": "HorizontalFlip"}]})
    with pytest.raises(ConfigError, match="invalid transform settings"):
        get_augmentation({"transforms": [{"type": "Affine", "rotate": "a lot", "p": 1.0}]})
    with pytest.raises(ConfigError, match="'type'"):
        get_augmentation({"transforms": [{"p": 1.0}]})
    with pytest.raises(ConfigError, match="no other keys"):
        get_augmentation({"name": "light", "p": 0.3})
    with pytest.raises(ConfigError, match="needs 'name'"):
        get_augmentation({"pipeline": "light"})


def test_nested_config_dict_and_albumentations_serialization_roundtrip() -> None:
    spec = {"transforms": [{"type": "OneOf", "p": 1.0, "transforms": [
        {"type": "HorizontalFlip", "p": 1.0}, {"type": "VerticalFlip", "p": 1.0}]}]}
    aug = get_augmentation(spec, seed=1)
    image = _img()
    outs = _run(aug, image, 40)
    assert all(np.array_equal(o, image[:, ::-1]) or np.array_equal(o, image[::-1]) for o in outs)
    assert any(np.array_equal(o, image[::-1]) for o in outs) and any(np.array_equal(o, image[:, ::-1]) for o in outs)
    # albumentations.to_dict output is accepted as is, and behaves the same for the same seed
    original = get_augmentation("covid_paper", seed=5)
    restored = get_augmentation(A.to_dict(get_augmentation("covid_paper")), seed=5)
    for a, b in zip(_run(original, image, 20), _run(restored, image, 20), strict=True):
        np.testing.assert_array_equal(a, b)


def test_user_compose_copied_not_modified() -> None:
    user = A.Compose([A.HorizontalFlip(p=0.5)], seed=11)
    generator = user.transforms[0].random_generator
    aug = get_augmentation(user, seed=3)
    assert aug is not user and user.transforms[0].random_generator is generator


def test_paper_face_geometry() -> None:
    aug = get_augmentation("paper_face", seed=0)
    aug.save_applied_params = True
    size = 32
    center = np.array([(size - 1) / 2, (size - 1) / 2, 1.0])
    angles, shifts, flips = [], [], 0
    for _ in range(200):
        applied = dict(aug(image=_img(size, size))["applied_transforms"])
        angles.append(applied["Affine"]["rotate"])
        shifts.append(applied["Affine"]["matrix"] @ center - center)
        flips += "HorizontalFlip" in applied
    angles_arr, shifts_arr = np.abs(angles), np.abs(np.array(shifts)[:, :2])
    assert angles_arr.max() <= 20 and angles_arr.max() > 15  # the full +-20 degree range is used
    assert shifts_arr.max() <= 0.1 * size + 0.5 and shifts_arr.max() > 0.07 * size
    assert 70 < flips < 130  # p = 0.5


def test_covid_online_only_produces_the_five_variants() -> None:
    image = _img(8, 8, seed=3)
    # original, mirror, rotated 90, 180 and 270 degrees counter-clockwise
    variants = [v.tobytes() for v in (image, image[:, ::-1], *(np.ascontiguousarray(np.rot90(image, k))
                                                               for k in (1, 2, 3)))]
    assert len(set(variants)) == 5  # all distinct for a generic image
    aug = get_augmentation("covid_paper", seed=0)
    counts = np.zeros(5, dtype=int)
    for out in _run(aug, image, 250):
        counts[variants.index(out.tobytes())] += 1  # ValueError if not one of the five
    assert (counts > 25).all(), counts  # each variant drawn, about uniformly (expected 50)


def test_seeded_determinism() -> None:
    image = _img()
    for name in ("paper_face", "covid_paper", "light"):
        first = _run(get_augmentation(name, seed=7), image, 6)
        second = _run(get_augmentation(name, seed=7), image, 6)
        other = _run(get_augmentation(name, seed=8), image, 6)
        assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True)), name
        assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True)), name


def test_seeded_transforms_draw_independently() -> None:
    # Compose(seed=s) alone gives both flips the same stream, so they always fire together
    aug = seed_augmentation(A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)]), 0)
    image = _img(4, 4)
    kinds = set()
    for out in _run(aug, image, 60):
        h = np.array_equal(out, image[:, ::-1]) or np.array_equal(out, image[::-1, ::-1])
        v = np.array_equal(out, image[::-1]) or np.array_equal(out, image[::-1, ::-1])
        kinds.add((h, v))
    assert kinds == {(False, False), (True, False), (False, True), (True, True)}
