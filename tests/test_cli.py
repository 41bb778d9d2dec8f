"""The CLI end to end on tiny data: synth -> index -> train -> evaluate -> report -> compare,
and one-line errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kerascv_emotion.cli import main


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_train_evaluate_report_compare(tmp_path: Path) -> None:
    data = tmp_path / "faces"
    _invoke("synth", "faces", str(data), "--per-class", "5", "--size", "32", "--seed", "1",
            "--val-fraction", "0.4", "--test-fraction", "0.4")
    index = data / "index.csv"
    # re-indexing the written images with the folder reader gives the same classes
    out = _invoke("index", str(data), "--out", str(tmp_path / "reindex.csv"))
    assert "anger" in out and "surprise" in out
    runs = []
    for arch in ("alexnet", "vgg"):
        run = tmp_path / arch
        _invoke("train", "--index", str(index), "--arch", arch, "--image-size", "32", "--epochs", "1",
                "--batch-size", "8", "--out", str(run))
        for name in ("model.keras", "history.csv", "class_names.json", "config.json", "metrics_log.jsonl"):
            assert (run / name).is_file(), name
        config = json.loads((run / "config.json").read_text())
        assert config["arch"] == arch and config["epochs"] == 1 and config["image_size"] == 32
        assert config["versions"]["keras"].startswith("3.")
        _invoke("evaluate", str(run), "--split", "test", "--bootstrap", "50")
        metrics = json.loads((run / "eval" / "test" / "metrics.json").read_text())
        assert metrics["n"] == 16 and len(metrics["confusion_matrix"]) == 8
        assert set(metrics["per_class"]) == set(json.loads((run / "class_names.json").read_text()))
        _invoke("report", str(run))
        assert (run / "report" / "report.html").stat().st_size > 10_000
        runs.append(str(run))
    _invoke("compare", *runs, "--out", str(tmp_path / "cmp"))
    html = (tmp_path / "cmp" / "comparison.html").read_text()
    assert "alexnet" in html and "vgg" in html


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kerascv_emotion", *args], capture_output=True, text=True,
                          timeout=300)


def test_missing_index_is_one_line_error(tmp_path: Path) -> None:
    result = _run_cli("train", "--index", str(tmp_path / "nope.csv"), "--arch", "vgg", "--out", str(tmp_path / "r"))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "nope.csv" in lines[0] and "does not exist" in lines[0]


def test_unknown_arch_is_one_line_error(tiny_xrays: Path, tmp_path: Path) -> None:
    result = _run_cli("train", "--index", str(tiny_xrays), "--arch", "resnet9000", "--out", str(tmp_path / "r"))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "resnet9000" in errors[0] and "vgg" in errors[0]


def test_evaluate_unfinished_run_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    result = _run_cli("evaluate", str(tmp_path / "run"))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "kerascv-emotion train" in result.stderr


def test_arch_options_reach_the_model_and_bad_ones_are_one_line_errors(tiny_xrays: Path, tmp_path: Path) -> None:
    run = tmp_path / "r"
    _invoke("train", "--index", str(tiny_xrays), "--arch", "mobilenet", "--image-size", "32", "--epochs", "1",
            "--arch-option", "alpha=0.25", "--arch-option", "dropout=0", "--out", str(run))
    config = json.loads((run / "config.json").read_text())
    assert config["arch_kwargs"] == {"alpha": 0.25, "dropout": 0}
    import keras

    model = keras.saving.load_model(run / "model.keras")
    assert model.get_layer("stem_conv").filters == 8  # 32 * alpha
    for option, message in (("depth=3", "has no option(s) depth"), ("alpha", "KEY=VALUE")):
        result = _run_cli("train", "--index", str(tiny_xrays), "--arch", "mobilenet", "--image-size", "32",
                          "--epochs", "1", "--arch-option", option, "--out", str(tmp_path / "bad"))
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert len(errors) == 1 and message in errors[0]


def test_cli_modules_import_options_never_the_group() -> None:
    """The layout of kerascv_emotion/cli/: the command modules share options.py and never import
    the package (where ``main`` lives and registers them), and options.py imports no command
    module, so no module of the CLI imports another in a circle."""
    import ast

    import kerascv_emotion.cli as cli

    folder = Path(cli.__file__).parent
    modules = sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__")
    assert {"options", "data", "train", "evaluate", "report", "ensemble", "deploy"} <= set(modules)
    for name in modules:
        tree = ast.parse((folder / f"{name}.py").read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        cli_imports = {m for m in imported if m and m.startswith("kerascv_emotion.cli")}
        assert cli_imports <= ({"kerascv_emotion.cli.options"} if name != "options" else set()), (name, cli_imports)
    registered = {command.callback.__module__ for command in main.commands.values()}
    assert registered == {f"kerascv_emotion.cli.{name}" for name in modules if name != "options"}
