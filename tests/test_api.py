"""The curated top-level API: every name in ``kerascv_emotion.__all__`` resolves to its one home,
and ``import kerascv_emotion`` alone imports neither TensorFlow nor Keras."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import kerascv_emotion


def test_import_loads_neither_tensorflow_nor_keras() -> None:
    code = ("import sys, kerascv_emotion; dir(kerascv_emotion); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("name", kerascv_emotion.__all__)
def test_every_public_name_resolves_to_its_home(name: str) -> None:
    value = getattr(kerascv_emotion, name)
    if name == "__version__":
        assert isinstance(value, str)
        return
    module, _, attribute = kerascv_emotion._API[name].partition(":")
    home = importlib.import_module(module)
    assert value is (getattr(home, attribute) if attribute else home)
    assert name in dir(kerascv_emotion)


def test_the_api_lists_each_name_once_and_shadows_no_submodule() -> None:
    assert len(kerascv_emotion.__all__) == len(set(kerascv_emotion.__all__))
    assert set(kerascv_emotion.__all__) == {"__version__", *kerascv_emotion._API}
    submodules = {info.name for info in pkgutil.iter_modules(kerascv_emotion.__path__)}
    for name, target in kerascv_emotion._API.items():
        # importing a submodule sets the package attribute of its name, which would replace a
        # function of the same name (kerascv_emotion.predict.predict is predict_files therefore)
        assert name not in submodules or target == f"kerascv_emotion.{name}", name
    assert isinstance(kerascv_emotion.metrics, types.ModuleType)


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'load_modle'"):
        kerascv_emotion.load_modle  # noqa: B018
    assert not hasattr(kerascv_emotion, "_API_missing")


def test_architecture_doc_lists_the_api() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
    section = doc.split("## Public API", 1)[1].split("\n## ", 1)[0]
    assert [name for name in kerascv_emotion._API if f"`{name}`" not in section] == []
