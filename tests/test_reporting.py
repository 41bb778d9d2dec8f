"""Reporting: figures, Markdown, report.html and comparison.html from fake run directories.

The run directories are built here in the formats of docs/architecture.md; their metrics
files and logs are written by the package's own producers (kerascv_emotion.metrics,
kerascv_emotion.runs) from seeded random predictions (no training, no TensorFlow).
"""

from __future__ import annotations

import ast
import base64
import csv
import io
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import kerascv_emotion.reporting
from kerascv_emotion import runs as run_folders
from kerascv_emotion.errors import ConfigError, DataError
from kerascv_emotion.io import to_jsonable, write_json
from kerascv_emotion.metrics import (
    bootstrap_intervals,
    bootstrap_regression_intervals,
    classification_metrics,
    regression_metrics,
)
from kerascv_emotion.reporting import (
    confusion_matrix_figure,
    read_evaluation,
    read_run,
    roc_figure,
    training_curves_figure,
    write_comparison,
    write_run_report,
)
from kerascv_emotion.reporting.tables import summary_rows

CLASSES = ["anger", "contempt", "disgust", "fear & <surprise>", "happy", "neutral", "sad",
           "very long class name"]
ABSENT = 1  # "contempt" never occurs in y_true: its AUC is undefined (null + note)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# What evaluation.evaluate adds beside the metrics producers' keys (its inference timing needs a model).
EVALUATE_FIELDS = {"split": "test", "inference": {"ms_per_image": 0.8, "batch_size": 32, "device": "CPU"}}


def fmt3(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def softmax_predictions(rng: np.random.Generator, y_true: np.ndarray, quality: float) -> np.ndarray:
    """Class probabilities ``(N, K)`` whose true class gets ``quality`` extra logit."""
    logits = quality * np.eye(len(CLASSES))[y_true] + rng.normal(0, 1.0, (len(y_true), len(CLASSES)))
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def write_history(work: Path, columns: dict[str, list[float]], phases: list[str]) -> None:
    """Each phase's ``work/history-<phase>.csv`` as Keras's CSVLogger writes it."""
    for phase in dict.fromkeys(phases):
        with open(work / f"history-{phase}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["epoch", *columns])
            for epoch in (e for e, p in enumerate(phases) if p == phase):
                writer.writerow([epoch, *("NA" if math.isnan(v[epoch]) else v[epoch] for v in columns.values())])


def finish_run(run: Path, config: dict[str, Any], columns: dict[str, list[float]], phases: list[str],
               records: list[dict[str, Any]], output_names: list[str], model_bytes: int) -> None:
    """Write a run folder with the producer training uses (:func:`kerascv_emotion.runs.finish`)
    from a ``work/`` holding the per-phase logs a training would have left."""
    work = run / "work"
    work.mkdir(parents=True)
    write_history(work, columns, phases)
    for phase in dict.fromkeys(phases):
        (work / phase).mkdir()
        with open(work / phase / "metrics_log.jsonl", "w") as handle:
            for record in (r for r in records if phases[r["epoch"]] == phase):
                handle.write(json.dumps(to_jsonable(record), allow_nan=False) + "\n")  # as PerClassMetrics
    checkpoint = work / "best.keras"
    checkpoint.write_bytes(b"k" * model_bytes)
    run_folders.finish(run, work, checkpoint, list(dict.fromkeys(phases)), config, output_names, [])


def make_run(root: Path, name: str, arch: str = "vgg", quality: float = 2.0, seed: int = 0,
             tuned: bool = False, evaluated: bool = True, bootstrap: bool = True, n: int = 160) -> Path:
    """A finished classification run directory (optionally tuned: phases head + finetune)."""
    rng = np.random.default_rng(seed)
    run = root / name
    phases = ["head"] * 3 + ["finetune"] * 4 if tuned else ["train"] * 6
    epochs = len(phases)
    config = {
        "arch": arch, "task": "classification", "index": "data/faces.csv", "image_size": 32, "channels": 3,
        "epochs": epochs, "batch_size": 16, "augment": "paper_face", "seed": seed, "learning_rate": 0.001,
        "monitor": "val_macro_f1", "class_names": CLASSES, "params": 1_234_567 + seed,
        "phases": [{"name": p, "first_epoch": phases.index(p)} for p in dict.fromkeys(phases)],
        "versions": {"keras": "3.15.0", "tensorflow": "2.21.0"}}
    t = np.arange(epochs)
    present = [i for i in range(len(CLASSES)) if i != ABSENT]
    y_val = rng.choice(present, size=n)
    records = []  # PerClassMetrics' record per epoch, the model improving over the epochs
    for epoch in range(epochs):
        metrics = classification_metrics(y_val, softmax_predictions(rng, y_val, quality * (1 - np.exp(-epoch / 2))),
                                         CLASSES)
        records.append({"epoch": epoch, "val_loss": metrics["log_loss"], **metrics})
    columns = {"loss": list(2.0 * np.exp(-t / 3) + 0.2), "accuracy": list(0.3 + 0.1 * t),
               "val_loss": [r["val_loss"] for r in records], "val_accuracy": [r["accuracy"] for r in records],
               "val_macro_f1": [r["macro_avg"]["f1"] for r in records]}
    columns["val_accuracy"][0] = math.nan  # written as "NA", as Keras's CSVLogger does
    finish_run(run, config, columns, phases, records, CLASSES, 2_000_000 + 1000 * seed)
    if evaluated:
        y_true = rng.choice(present, size=n)
        y_prob = softmax_predictions(rng, y_true, quality)
        folder = run / "eval" / "test"
        folder.mkdir(parents=True)
        np.savez_compressed(folder / "predictions.npz", y_true=y_true, y_prob=y_prob,
                            paths=np.array([f"img{i}.png" for i in range(n)]), class_names=np.array(CLASSES))
        metrics = classification_metrics(y_true, y_prob, CLASSES)
        if bootstrap:
            metrics["bootstrap"] = bootstrap_intervals(y_true, y_prob, CLASSES, n_resamples=200)
        inference = {"ms_per_image": 0.5 + y_prob[0, 0], "batch_size": 32, "device": "CPU"}
        write_json(folder / "metrics.json", metrics | EVALUATE_FIELDS | {"task": "classification",
                                                                         "inference": inference})
    return run


def make_regression_run(root: Path, name: str, seed: int = 0, n: int = 150, constant_arousal: bool = False) -> Path:
    """A finished, evaluated regression run; ``constant_arousal``: the model predicts one
    arousal value for every test image (its correlation is undefined)."""
    rng = np.random.default_rng(seed)
    run = root / name
    config = {"arch": "mobilenet", "task": "regression", "index": "data/va.csv", "image_size": 32,
              "channels": 3, "epochs": 4, "seed": seed, "params": 98_765, "monitor": "val_ccc_mean",
              "versions": {"keras": "3.15.0"}}
    t = np.arange(4)
    y_val = rng.uniform(-1, 1, (n, 2))
    records = []  # PerClassMetrics' record per epoch, the model improving over the epochs
    for epoch in range(4):
        metrics = regression_metrics(y_val, np.clip((0.2 + 0.15 * epoch) * y_val + rng.normal(0, 0.25, (n, 2)), -1, 1))
        records.append({"epoch": epoch, "val_loss": metrics["mean"]["rmse"] ** 2, **metrics})
    columns = {"loss": list(0.5 - 0.1 * t), "val_loss": [r["val_loss"] for r in records],
               "val_ccc_mean": [r["mean"]["ccc"] for r in records], "val_rmse_mean": [r["mean"]["rmse"] for r in records]}
    finish_run(run, config, columns, ["train"] * 4, records, ["valence", "arousal"], 500_000)
    y_true = rng.uniform(-1, 1, (n, 2))
    y_pred = np.clip(0.6 * y_true + rng.normal(0, 0.25, (n, 2)), -1, 1)
    if constant_arousal:
        y_pred[:, 1] = 0.1
    folder = run / "eval" / "test"
    folder.mkdir(parents=True)
    np.savez_compressed(folder / "predictions.npz", y_true=y_true, y_pred=y_pred,
                        paths=np.array([f"img{i}.png" for i in range(n)]), class_names=np.array(CLASSES))
    metrics = regression_metrics(y_true, y_pred)
    metrics["bootstrap"] = bootstrap_regression_intervals(y_true, y_pred, n_resamples=100)
    write_json(folder / "metrics.json", metrics | EVALUATE_FIELDS | {"task": "regression"})
    return run


def embedded_images(html_text: str) -> list[Image.Image]:
    """Every ``data:image/png;base64`` image of a page, decoded and loaded by Pillow."""
    images = []
    for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html_text):
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        image.load()
        images.append(image)
    return images


def image_probe_dom(flags: list[str], page: Path, tmp_path: Path) -> str:
    """The DOM Chromium (``flags``) dumps for a copy of ``page`` with a probe that puts the number of
    images in ``data-images`` and the alt texts of those that failed to decode in ``data-broken``."""
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", (
        "<script>window.addEventListener('load', () => { const imgs = [...document.images];"
        "document.body.setAttribute('data-images', imgs.length);"
        "document.body.setAttribute('data-broken', imgs.filter(i => !i.complete || i.naturalWidth === 0)"
        ".map(i => i.alt).join('|')); });</script></body>")))
    return subprocess.run([*flags, "--dump-dom", probe.as_uri()], check=True, capture_output=True, text=True,
                          timeout=60).stdout


def markdown_rows(text: str) -> dict[str, list[str]]:
    """First Markdown table of ``text``: row label -> cells (Markdown escapes undone)."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| class"):
            cells = [re.sub(r"\\(.)", r"\1", c.strip()) for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            rows.setdefault(cells[0], cells[1:])
        elif rows and not line.startswith("|"):
            break
    return rows


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {
        "vgg": make_run(root, "vgg", "vgg", quality=2.5, seed=1),
        "alexnet": make_run(root, "alexnet", "alexnet", quality=1.5, seed=2, tuned=True, bootstrap=False),
        "fresh": make_run(root, "fresh", "mobilenet", seed=3, evaluated=False),
        "va": make_regression_run(root, "va", seed=4),
    }


@pytest.fixture(scope="module")
def vgg_report(runs: dict[str, Path]) -> Path:
    return write_run_report(runs["vgg"])


@pytest.fixture(scope="module")
def comparison(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_comparison([runs["vgg"], runs["alexnet"]], tmp_path_factory.mktemp("cmp") / "out",
                            names=["VGG", "AlexNet"])


def load_metrics(run: Path) -> dict[str, Any]:
    return json.loads((run / "eval" / "test" / "metrics.json").read_text())


def test_confusion_matrix_figure_draws_the_json_numbers(runs: dict[str, Path]) -> None:
    metrics = load_metrics(runs["vgg"])
    cm = np.array(metrics["confusion_matrix"])
    fig = confusion_matrix_figure(cm.tolist(), CLASSES)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == [str(v) for v in cm.ravel()]
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES
    assert [t.get_text() for t in ax.get_yticklabels()] == CLASSES
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    normalised = confusion_matrix_figure(cm.tolist(), CLASSES, normalize=True).axes[0]
    texts = np.array([t.get_text() for t in normalised.texts]).reshape(cm.shape)
    assert list(texts[ABSENT]) == ["n/a"] * len(CLASSES)  # no true images of the class
    rows = [i for i in range(len(CLASSES)) if i != ABSENT]
    assert [float(v) for v in texts[rows].ravel()] == pytest.approx(
        (cm[rows] / cm[rows].sum(axis=1, keepdims=True)).ravel(), abs=0.005)


def test_roc_figure_legend_has_every_auc(runs: dict[str, Path]) -> None:
    metrics = load_metrics(runs["vgg"])
    with np.load(runs["vgg"] / "eval" / "test" / "predictions.npz") as data:
        fig = roc_figure(data["y_true"], data["y_prob"], metrics)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    for name in CLASSES:
        auc = metrics["per_class"][name]["roc_auc"]
        assert any(line.startswith(name) and fmt3(auc) in line for line in legend), name
    assert f"micro-average (AUC {fmt3(metrics['roc_auc_micro'])})" in legend
    assert f"macro-average (AUC {fmt3(metrics['roc_auc_macro'])})" in legend
    assert "chance (AUC 0.5)" in legend


def test_run_report_tables_hold_the_json_numbers(runs: dict[str, Path], vgg_report: Path) -> None:
    metrics = load_metrics(runs["vgg"])
    boot = metrics["bootstrap"]
    assert vgg_report == runs["vgg"] / "report" / "report.html"
    markdown = (vgg_report.parent / "classification_report.md").read_text()
    assert "| fear & \\<surprise\\> |" in markdown  # Markdown would take <surprise> for an HTML tag
    rows = markdown_rows(markdown)
    for name in CLASSES:
        stats = metrics["per_class"][name]
        cells = rows[name]
        assert cells[0] == fmt3(stats["precision"])
        assert cells[2] == fmt3(stats["f1"])
        assert cells[3] == fmt3(stats["specificity"])
        assert cells[5] == str(stats["support"])
        low, high = boot["recall"][name]["low"], boot["recall"][name]["high"]
        assert cells[1] == f"{fmt3(stats['recall'])} [{fmt3(low)}, {fmt3(high)}]"
        if stats["roc_auc"] is not None:
            assert cells[4].startswith(fmt3(stats["roc_auc"]) + " [")
    # contempt, absent from y_true: recall 0 by scikit-learn's zero_division, its interval and AUC undefined
    assert rows["contempt"][4] == "n/a" and rows["contempt"][1] == "0.000 [n/a, n/a]"
    accuracy = boot["accuracy"]
    assert rows["accuracy"][2] == f"{fmt3(metrics['accuracy'])} [{fmt3(accuracy['low'])}, {fmt3(accuracy['high'])}]"
    assert rows["macro avg"][2].startswith(fmt3(metrics["macro_avg"]["f1"]) + " [")
    assert rows["weighted avg"][1] == fmt3(metrics["weighted_avg"]["recall"])
    page = vgg_report.read_text()
    for cells in rows.values():  # the HTML table shows the same cells
        assert "".join(f"<td>{c}</td>" for c in cells) in page
    assert "roc_auc and average_precision for &#x27;contempt&#x27; undefined: class absent from y_true" in page


def test_run_report_html_is_self_contained_and_complete(runs: dict[str, Path], vgg_report: Path) -> None:
    metrics = load_metrics(runs["vgg"])
    page = vgg_report.read_text()
    for name in CLASSES:
        assert name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in page
        auc = metrics["per_class"][name]["roc_auc"]
        assert fmt3(auc) in page
    assert "<surprise>" not in page  # escaped everywhere
    assert fmt3(metrics["roc_auc_micro"]) in page and fmt3(metrics["roc_auc_macro"]) in page
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing to fetch: images are data URIs
    images = embedded_images(page)
    assert len(images) == 7  # confusion x2, ROC, PR, bars, training curves, per-class F1
    assert all(image.width >= 400 and image.height >= 300 for image in images)
    assert all(len(np.unique(np.asarray(image.convert("L")))) > 10 for image in images)  # not blank
    # settings: main keys first, then the rest, library versions shown
    order = [page.index(f">{key}</td>") for key in ("arch", "image_size", "epochs", "augment", "seed", "versions",
                                                    "learning_rate")]
    assert order == sorted(order)
    assert "keras: 3.15.0" in page
    assert "1,234,568" in page and "2.00 MB" in page and "ms/image (batch 32, CPU)" in page
    for stem in ("training_curves", "per_class_f1", "roc", "precision_recall", "confusion_matrix",
                 "confusion_matrix_normalized", "classification_report", "per_class_bars"):
        assert (vgg_report.parent / f"{stem}.png").stat().st_size > 5000


def test_training_curves_mark_phases_and_best_epoch(runs: dict[str, Path]) -> None:
    run = read_run(runs["alexnet"])
    best = run.best_epoch()
    f1 = run.history.columns["val_macro_f1"]
    assert best == int(np.nanargmax(f1))
    fig = training_curves_figure(run.history, "val_macro_f1", best)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "phase head (epochs 0-2)" in labels and "phase finetune (epochs 3-6)" in labels
        assert f"best epoch {best} (val_macro_f1 {f1[best]:.3f})" in labels
        assert ax.get_xlabel() == "epoch (0-based)" and ax.get_title()
    assert "validation macro_f1 (monitored)" in [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    plain = training_curves_figure(read_run(runs["vgg"]).history, "val_macro_f1", 3)
    assert not any(t.get_text().startswith("phase") for t in plain.axes[0].get_legend().get_texts())


def test_report_without_evaluation_or_log_has_curves_and_notes(tmp_path: Path) -> None:
    run = make_run(tmp_path, "fresh", evaluated=False)
    (run / "metrics_log.jsonl").unlink()
    page = write_run_report(run, out_dir=tmp_path / "rep", formats=("png", "svg")).read_text()
    assert f"No evaluation on split &#x27;test&#x27; yet: run `kerascv-emotion evaluate {run} --split test`" in page
    assert "metrics_log.jsonl not found" in page
    assert len(embedded_images(page)) == 1  # the training curves
    assert (tmp_path / "rep" / "training_curves.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "rep" / "training_curves.png").is_file()
    assert not (tmp_path / "rep" / "confusion_matrix.png").exists()
    with pytest.raises(ConfigError, match="jpeg"):
        write_run_report(run, out_dir=tmp_path / "bad", formats=("jpeg",))


def test_binary_sigmoid_predictions_and_extra_metrics(tmp_path: Path) -> None:
    folder = tmp_path / "eval" / "test"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 40)
    positive = np.clip(0.3 * y_true + rng.uniform(0, 0.7, 40), 0, 1)
    np.savez(folder / "predictions.npz", y_true=y_true, y_prob=positive[:, None])
    write_json(folder / "metrics.json", classification_metrics(y_true, positive[:, None], ["Normal", "Covid"])
               | EVALUATE_FIELDS | {"task": "classification"})
    evaluation = read_evaluation(tmp_path, "test", "classification", required=True)
    metrics = evaluation.metrics
    y_prob = np.stack([1 - positive, positive], axis=1)
    assert evaluation.predictions["y_prob"] == pytest.approx(y_prob)  # (N, 1) sigmoid -> two columns
    legend = [t.get_text() for t in roc_figure(y_true, evaluation.predictions["y_prob"], metrics).legends[0].get_texts()]
    assert f"Covid (AUC {fmt3(metrics['per_class']['Covid']['roc_auc'])})" in legend
    binary = metrics["binary"]  # the 2-class extras: shown as group.key rows
    assert binary["positive_class"] == "Covid" and binary["threshold"] == 0.5
    assert ("binary.positive_class", "Covid") in summary_rows(metrics)
    assert ("binary.sensitivity", fmt3(binary["sensitivity"])) in summary_rows(metrics)
    assert ("binary.tp", str(binary["tp"])) in summary_rows(metrics)


def test_regression_report(runs: dict[str, Path]) -> None:
    page = write_run_report(runs["va"]).read_text()
    metrics = load_metrics(runs["va"])
    boot = metrics["bootstrap"]
    markdown = (runs["va"] / "report" / "regression_report.md").read_text()
    rows = markdown_rows(markdown)
    keys = ("rmse", "corr", "sagr", "ccc")
    for name in ("valence", "arousal"):
        stats = metrics["per_dim"][name]
        assert rows[name] == [f"{fmt3(stats[k])} [{fmt3(boot[k][name]['low'])}, {fmt3(boot[k][name]['high'])}]"
                              for k in keys]
        assert "".join(f"<td>{c}</td>" for c in rows[name]) in page
    assert rows["mean"] == [f"{fmt3(metrics['mean'][k])} [{fmt3(boot[k + '_mean']['low'])}, "
                            f"{fmt3(boot[k + '_mean']['high'])}]" for k in keys]
    assert "".join(f"<td>{c}</td>" for c in rows["mean"]) in page
    note = "In brackets: bootstrap 0.95 percentile intervals (100 resamples, seed 0)."
    assert note in markdown and note in page
    images = embedded_images(page)
    assert len(images) == 5  # scatter, circumplex, histograms, curves, per-dim CCC
    for stem in ("va_scatter", "circumplex", "error_histograms", "regression_metrics", "per_dim_ccc"):
        assert (runs["va"] / "report" / f"{stem}.png").is_file()
    assert not (runs["va"] / "report" / "classification_report.md").exists()


def test_missing_artefacts_name_the_file_and_command(runs: dict[str, Path], tmp_path: Path) -> None:
    run = make_run(tmp_path, "broken", seed=5)
    (run / "eval" / "test" / "predictions.npz").unlink()
    with pytest.raises(DataError, match=r"predictions\.npz not found; run `kerascv-emotion evaluate .*--split test`"):
        write_run_report(run)
    (run / "history.csv").unlink()
    with pytest.raises(DataError, match=r"history\.csv not found; run `kerascv-emotion train`"):
        write_run_report(run)
    (run / "config.json").unlink()
    with pytest.raises(DataError, match=r"config\.json not found; run `kerascv-emotion train`"):
        write_run_report(run)
    with pytest.raises(DataError, match=r"metrics\.json not found; run `kerascv-emotion evaluate"):
        write_comparison([runs["vgg"], runs["fresh"]], tmp_path / "cmp")
    with pytest.raises(ConfigError, match="different tasks"):
        write_comparison([runs["vgg"], runs["va"]], tmp_path / "cmp")
    with pytest.raises(ConfigError, match="one name per run"):
        write_comparison([runs["vgg"], runs["alexnet"]], tmp_path / "cmp", names=["only one"])


def test_comparison_tables_winners_and_csv(runs: dict[str, Path], comparison: Path) -> None:
    vgg, alex = load_metrics(runs["vgg"]), load_metrics(runs["alexnet"])
    page = comparison.read_text()
    out = comparison.parent
    for name in CLASSES:  # the per-class winner line, computed here from the two JSON files
        a, b = vgg["per_class"][name]["f1"], alex["per_class"][name]["f1"]
        escaped = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        winner = "VGG, AlexNet" if a == b else "VGG" if a > b else "AlexNet"
        assert f"best on {escaped}: {winner} (F1 {fmt3(max(a, b))}" in page
    best_macro = max(vgg["macro_avg"]["f1"], alex["macro_avg"]["f1"])
    assert re.search(rf'<td class="best">{fmt3(best_macro)}( \[[^<]*\])?</td>', page)
    assert '<td class="best">2.00</td>' in page  # the smaller model file (VGG, 2,001,000 bytes)
    assert "1,234,568" in page and "1,234,569" in page  # parameters of both
    assert len(embedded_images(page)) == 3
    with open(out / "comparison.csv", newline="") as handle:
        table = {row["name"]: row for row in csv.DictReader(handle)}
    assert float(table["VGG"]["macro_f1"]) == pytest.approx(vgg["macro_avg"]["f1"])
    assert float(table["AlexNet"][f"f1/{CLASSES[3]}"]) == pytest.approx(alex["per_class"][CLASSES[3]]["f1"])
    assert float(table["VGG"]["f1/contempt"]) == vgg["per_class"]["contempt"]["f1"] == 0.0  # zero_division
    assert int(table["AlexNet"]["model_size_bytes"]) == 2_002_000
    assert float(table["VGG"]["ms_per_image"]) == pytest.approx(vgg["inference"]["ms_per_image"])
    md = (out / "comparison.md").read_text()
    assert f"**{fmt3(best_macro)}" in md and "best on happy:" in md
    assert (out / "f1_heatmap.png").is_file() and (out / "macro_roc.png").is_file()


def test_regression_comparison_with_clashing_folder_names(runs: dict[str, Path], tmp_path: Path) -> None:
    other = make_regression_run(tmp_path / "b", "va", seed=9, constant_arousal=True)  # folder name as runs["va"]
    page = write_comparison([runs["va"], other], tmp_path / "cmp").read_text()
    names = (f"{runs['va'].parent.name}/va", "b/va")  # told apart by their parent folders
    a, b = load_metrics(runs["va"]), load_metrics(other)
    for dim in ("valence", "arousal"):
        value, winner = max((a["per_dim"][dim]["ccc"], names[0]), (b["per_dim"][dim]["ccc"], names[1]))
        assert f"best on {dim}: {winner} (CCC {fmt3(value)})" in page
    assert len(embedded_images(page)) == 2
    assert b["per_dim"]["arousal"]["corr"] is None  # undefined: null in the JSON, an empty cell in the CSV
    with open(tmp_path / "cmp" / "comparison.csv", newline="") as handle:
        table = {row["name"]: row for row in csv.DictReader(handle)}
    assert table["b/va"]["corr/arousal"] == "" and float(table["b/va"]["corr/valence"]) == pytest.approx(
        b["per_dim"]["valence"]["corr"])


def test_reporting_imports_stay_light() -> None:
    """No TensorFlow/Keras and no sibling module that could pull them in (checked statically,
    so the test holds whatever other tests imported into this process)."""
    allowed = {"numpy", "matplotlib", "sklearn", "kerascv_emotion"}
    allowed_own = ("kerascv_emotion.errors", "kerascv_emotion.io", "kerascv_emotion.tasks", "kerascv_emotion.runs",
                   "kerascv_emotion.reporting")
    package = Path(kerascv_emotion.reporting.__file__).parent
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):  # relative: resolved against kerascv_emotion.reporting
                base = ["kerascv_emotion", "reporting"][: 3 - node.level] if node.level else []
                names = [".".join([*base, *([node.module] if node.module else [])])]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in allowed, f"{source.name} imports {name}"
                assert top != "kerascv_emotion" or name.startswith(allowed_own), f"{source.name} imports {name}"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_comparison_renders_in_headless_chromium(comparison: Path, tmp_path: Path) -> None:
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,2000", comparison.as_uri()],
                   check=True, capture_output=True, timeout=60)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (2000, 1280) and pixels.std() > 20  # not a blank page
    dom = image_probe_dom(flags, comparison, tmp_path)
    assert 'data-images="3"' in dom and 'data-broken=""' in dom


@pytest.fixture(scope="module")
def calibrated_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """report.html of an evaluated run whose metrics.json has the calibration figures and whose
    eval folder has a gallery.npz (random images and maps), as `evaluate` writes them."""
    from kerascv_emotion.explain import select_gallery
    from kerascv_emotion.metrics import apply_temperature, calibration_metrics

    run = make_run(tmp_path_factory.mktemp("calibrated"), "vgg", quality=2.5, seed=5)
    folder = run / "eval" / "test"
    metrics = json.loads((folder / "metrics.json").read_text())
    with np.load(folder / "predictions.npz") as data:
        y_true, y_prob = data["y_true"], data["y_prob"]
    calibrated = calibration_metrics(y_true, apply_temperature(y_prob, 1.5), CLASSES)
    metrics.update(ece=calibrated["ece"], calibration={
        "temperature": 1.5, "raw": calibration_metrics(y_true, y_prob, CLASSES), "calibrated": calibrated})
    write_json(folder / "metrics.json", metrics)
    ids, kinds = select_gallery(y_true, y_prob)
    rng = np.random.default_rng(0)
    np.savez_compressed(folder / "gallery.npz", index=ids, kind=kinds, y_true=y_true[ids],
                        y_pred=y_prob[ids].argmax(1), confidence=y_prob[ids].max(1),
                        images=rng.integers(0, 255, (len(ids), 32, 32, 3)).astype(np.uint8),
                        heat=rng.random((len(ids), 32, 32)).astype(np.float16))
    return write_run_report(run)


def test_run_report_has_reliability_diagram_and_galleries(calibrated_report: Path) -> None:
    page = calibrated_report.read_text()
    for text in ("<h3>Calibration</h3>", "temperature 1.500", "Reliability diagram", "What the network looks at",
                 "most confident right and wrong", "largest off-diagonal cells", "ECE (calibration error)"):
        assert text in page, text
    assert "not found" not in page and "older version" not in page
    images = embedded_images(page)
    assert len(images) == 10  # the 7 of every report, the reliability diagram and 2 galleries
    assert all(len(np.unique(np.asarray(image.convert("L")))) > 10 for image in images)
    for stem in ("reliability", "gallery_classes", "gallery_confusions"):
        assert (calibrated_report.parent / f"{stem}.png").stat().st_size > 5000


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_run_report_galleries_load_in_headless_chromium(calibrated_report: Path, tmp_path: Path) -> None:
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = image_probe_dom(flags, calibrated_report, tmp_path)
    assert 'data-images="10"' in dom and 'data-broken=""' in dom
