"""`export`: every format and quantisation on a tiny trained run; the file is loaded back in
its runtime and export.json's agreement figures meet their criteria; its single-image latency
and size reach the comparison table."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kerascv_emotion.cli import main
from kerascv_emotion.export import ACCURACY_TOLERANCE, FLOAT_TOLERANCE, LATENCY_RUNS, export_run


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
    latency = report["latency"]
    assert latency["runs"] == LATENCY_RUNS >= 50 and latency["warmup"] > 0
    assert 0 < latency["ms_median"] <= latency["ms_p90"]
    if fmt != "saved_model":
        assert latency["threads"] == 1


@pytest.mark.slow
def test_comparison_shows_exported_size_and_latency(tiny_run: Path, tmp_path: Path) -> None:
    from kerascv_emotion.evaluation import evaluate
    from kerascv_emotion.reporting.comparison import write_comparison

    runs = [tmp_path / "exported", tmp_path / "plain"]
    for run in runs:
        shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("eval", "export"))
        evaluate(run, bootstrap=0)
    report = export_run(runs[0], "litert")
    page = write_comparison(runs, tmp_path / "cmp").read_text()
    size, latency = f"{report['size_bytes'] / 1e6:.2f}", f"{report['latency']['ms_median']:.2f}"
    assert "litert size (MB)" in page and "litert latency (ms/image, 1 thread)" in page
    assert f'<td class="best">{size}</td>' in page and f'<td class="best">{latency}</td>' in page
    with open(tmp_path / "cmp" / "comparison.csv", newline="") as handle:
        table = {row["name"]: row for row in csv.DictReader(handle)}
    assert int(table["exported"]["litert/size_bytes"]) == report["size_bytes"]
    assert float(table["exported"]["litert/latency_ms"]) == report["latency"]["ms_median"]
    assert table["plain"]["litert/size_bytes"] == table["plain"]["litert/latency_ms"] == ""
    markdown = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "litert latency (ms/image, 1 thread)" in markdown and f"**{latency}**" in markdown


def test_unsupported_quantisation_is_a_one_line_error(tiny_run: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["export", str(tiny_run), "--format", "onnx", "--quantize", "int8",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 1 and "litert only" in result.output and not (tmp_path / "export.json").exists()


@pytest.mark.slow
def test_export_reads_images_from_the_configured_cache(tiny_run: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The validation (and calibration) images come from the cache folder every command uses:
    ``$KERASCV_EMOTION_CACHE`` when set and the run recorded no ``cache_dir``."""
    from kerascv_emotion.data.cache import CACHE_ENV

    cache = tmp_path / "env-cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    report = export_run(tiny_run, "litert", out_dir=tmp_path / "litert")
    assert report["passed"] is True
    assert sorted(p.suffix for p in cache.glob("*val*")) == [".json", ".npy"]
