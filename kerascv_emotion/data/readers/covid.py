"""Chest X-ray sets for COVID-19 classification (Reshi et al. 2021).

Two layouts are read:

* the COVID-19 Radiography Database: ``ROOT/COVID``, ``Normal``, ``Lung_Opacity``,
  ``Viral Pneumonia``, each holding the images directly or an ``images/`` folder beside
  ``masks/`` (lung masks are never indexed);
* the 3-class ``Covid`` / ``Normal`` / ``Viral Pneumonia`` set in split folders
  (``ROOT/train/Covid``, ``ROOT/test/Normal``, ...).

Class names are the folder names unless mapped (e.g. ``{"Covid": "covid", "Normal":
"normal"}`` with ``classes=["covid", "normal"]`` for a binary COVID-vs-normal task).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from kerascv_emotion.data.index import DEFAULT_SPLIT_OPTIONS, DatasetIndex, SplitOptions
from kerascv_emotion.data.readers.common import make_index
from kerascv_emotion.data.readers.folders import folder_entries

MASK_DIR = "masks"


def read_covid(root: str | Path, options: SplitOptions = DEFAULT_SPLIT_OPTIONS) -> DatasetIndex:
    """Index a chest X-ray layout (see the module doc); files in any ``masks/`` folder are
    left out (their count is ``meta["masks_ignored"]``). Missing splits are carved from
    train, stratified by class."""
    root = Path(root)
    entries, found = folder_entries(root)
    images = [e for e in entries if MASK_DIR not in (p.lower() for p in PurePosixPath(e.path).parts[:-1])]
    return make_index(
        root, images, source=root, options=options, canonical=False,
        meta={"source": "covid", **found, "masks_ignored": len(entries) - len(images)},
    )
