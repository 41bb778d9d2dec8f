"""Repository promises: README's set-up commands and .ci/run agree; packaging keeps
Snakemake (and AGPL albumentationsx) out of the library's own dependencies."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    return [line for block in blocks[:2] for line in block.splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_main_job_and_test_commands() -> None:
    main_job, tests = _readme_commands()[:2]
    assert "snakemake --cores 4" in main_job and '.[workflow]' in main_job
    assert tests.startswith("pip install") and tests.endswith("pytest")


def test_ci_runs_the_readme_test_command() -> None:
    tests = _readme_commands()[1]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert tests in ci


def test_library_dependencies_exclude_workflow_and_agpl() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"]).lower()
    assert "snakemake" not in core
    assert "albumentationsx" not in " ".join(core.split()) and "albumentations>=2.0,<2.1" in core
    assert any("snakemake" in d for d in project["optional-dependencies"]["workflow"])
    assert project["scripts"]["kerascv-emotion"] == "kerascv_emotion.cli:main"


def import_graph(package: Path = REPO / "kerascv_emotion") -> dict[str, set[str]]:
    """Module -> the package's modules it imports by name (module-level and function-level
    imports alike, ``TYPE_CHECKING`` blocks included), from the source's AST."""
    import ast

    def module_of(path: Path) -> str:
        parts = path.relative_to(package.parent).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {module_of(path): path for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".")[:len(name.split(".")) - node.level + is_package]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in node.names:
                    edges.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        graph[name] = {edge for edge in edges if edge in modules and edge != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (each holds an import
    circle), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "io", "tasks", "version"),
    ("data", "augment", "metrics", "devices", "inference", "model_catalog"),
    ("models", "batchnorm_statistics"),
    ("runs", "resume"),
    ("temperature", "priors"),
    ("callbacks", "settings", "training", "finetune", "ensemble", "distillation"),
    ("explain", "evaluation", "export", "face_detection", "predict", "presets", "recognizer"),
    ("reporting",),
    ("cli", "__main__", ""),
)
"""The package's layers, lowest first: a module (``kerascv_emotion.`` dropped) belongs to the first
layer one of whose prefixes it equals or starts with (``data`` holds ``data.readers.fer2013``);
``""`` is the package's own ``__init__`` (the lazy public API)."""


def layer(module: str) -> int:
    """The index in :data:`LAYERS` of a ``kerascv_emotion...`` module."""
    name = module.removeprefix("kerascv_emotion").removeprefix(".")
    for rank, prefixes in enumerate(LAYERS):
        if any(name == prefix or (prefix and name.startswith(prefix + ".")) for prefix in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer of tests/test_repo.py's LAYERS: add it where it belongs")


def test_no_import_circles_inside_the_package() -> None:
    assert import_cycles(import_graph()) == []


def test_no_module_imports_from_a_higher_layer() -> None:
    upward = [f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
              for module, targets in sorted(import_graph().items()) for target in sorted(targets)
              if layer(target) > layer(module)]
    assert upward == []


def test_inference_and_deployment_do_not_import_training() -> None:
    graph = import_graph()
    for module in ("temperature", "evaluation", "predict", "export", "explain", "ensemble", "presets",
                   "recognizer", "inference", "runs"):
        assert "kerascv_emotion.training" not in graph[f"kerascv_emotion.{module}"], module


if __name__ == "__main__":  # python tests/test_repo.py: print the package's import circles
    for cycle in import_cycles(import_graph()):
        print(" <-> ".join(cycle))
