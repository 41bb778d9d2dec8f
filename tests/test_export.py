"""`export`: every format and quantisation on a tiny trained run; the file is loaded back in
its runtime and export.json's agreement figures meet their criteria."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kerascv_emotion.cli import main
from kerascv_emotion.export import ACCURACY_TOLERANCE, FLOAT_TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "quantize", "runtime"), [
    ("litert", None, "litert"), ("litert", "float16", "litert"), ("litert", "int8", "litert"),
    ("onnx", None, "onnxruntime"), ("saved_model", None, "tensorflow"),
])
def test_export_loads_and_agrees(tiny_run: Path, tmp_path: Path, fmt: str, quantize: str | None,
                                 runtime: str) -> None:
    args = ["export", str(tiny_run), "--format", fmt, "--out", str(tmp_path)] + (["--quantize", quantize] if quantize else [])
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "export.json").read_text())
    assert (tmp_path / report["file"]).exists() and report["size_bytes"] > 10_000
    assert runtime in report["runtime"] and report["compared_on"] == {"split": "val", "images": 16}
    assert report["passed"] is True
    if quantize is None:
        assert report["max_abs_diff"] <= FLOAT_TOLERANCE and report["top1_agreement"] == 1.0
    else:
        assert report["accuracy_drop"] <= ACCURACY_TOLERANCE
    if quantize == "int8":
        assert report["calibration"] == {"split": "train", "images": 16}


def test_unsupported_quantisation_is_a_one_line_error(tiny_run: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["export", str(tiny_run), "--format", "onnx", "--quantize", "int8",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 1 and "litert only" in result.output and not (tmp_path / "export.json").exists()
