"""The package's folders are the stages of the data flow, and imports go one way: from the commands
down to the shared vocabulary (docs/decisions.md, "The package's layout"). The import graph is built
from the source, every import statement counted, those inside function bodies too."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "billing_batch"

# Each stage may import its own folder and the stages below it, never one above.
STAGES = ("engine", "inputs", "ledger", "documents", "review", "post")
GROUND = ("model", "money", "errors", "i18n", "files", "templates", "einvoice_rules")
# The commands on top, which may import every stage: the command line, the web console (billing-batch serve),
# and what they share. Any other name ranks with them too.
COMMANDS = ("cli", "console", "pipeline", "workspace")
LONG = 400  # lines; a longer module says why at its top, in a line starting with this:
LONG_REASON = "Over 400 lines:"


def modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file, for every module of the package at root."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules this module imports, wherever the import statement stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # a name that is a module is an edge to it; any other name, to the module it is taken from
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {m for m in found if m in known and m != name}


def graph(root: Path) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports(name, path, known) for name, path in known.items()}


def circle(edges: dict[str, set[str]]) -> list[str]:
    """One import circle as the modules along it, first repeated at the end; [] when there is none."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return []


def stage(module: str) -> int:
    """0 the shared vocabulary, 1.. the stages in order, one more for the commands on top."""
    part = module.split(".")[1] if "." in module else ""
    if part in GROUND:
        return 0
    if part in STAGES:
        return 1 + STAGES.index(part)
    return 1 + len(STAGES)


def upward(edges: dict[str, set[str]]) -> list[str]:
    """Each import of a later stage."""
    wrong = []
    for module, imported in edges.items():
        for other in imported:
            if stage(other) > stage(module):
                wrong.append(f"{module} imports {other}")
    return sorted(wrong)


def test_the_package_has_no_import_circle():
    assert circle(graph(PACKAGE)) == []


def test_no_stage_imports_a_later_stage_and_the_engine_only_the_vocabulary():
    edges = graph(PACKAGE)
    assert upward(edges) == []
    assert any(m.startswith("billing_batch.engine.") for m in edges), "the engine has moved: update STAGES"


def test_the_console_ranks_with_the_commands_and_no_stage_imports_it():
    edges = graph(PACKAGE)
    assert any(m.startswith("billing_batch.console.") for m in edges), "the console has moved: update COMMANDS"
    assert {stage(f"billing_batch.{name}") for name in COMMANDS} == {1 + len(STAGES)}
    below = [f"{m} imports {i}" for m, imported in edges.items() for i in imported
             if i.startswith("billing_batch.console") and stage(m) < stage("billing_batch.console")]
    assert below == []


def test_every_stage_folder_is_there_and_holds_modules():
    edges = graph(PACKAGE)
    for name in STAGES:
        assert any(m.startswith(f"billing_batch.{name}.") for m in edges), name


def test_a_long_module_says_why_at_its_top():
    long = []
    for name, path in modules(PACKAGE).items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > LONG and LONG_REASON not in (ast.get_docstring(ast.parse(text)) or ""):
            long.append(f"{name}: {text.count(chr(10))} lines")
    assert long == []


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """A package of the same shape: billing_batch/engine/cycles.py, model.py, pipeline.py."""
    root = tmp_path / "billing_batch"
    for folder in (root, root / "engine", root / "post"):
        folder.mkdir()
        (folder / "__init__.py").write_text("")
    (root / "model.py").write_text("import datetime\n")
    (root / "engine" / "cycles.py").write_text("from billing_batch.model import *\n")
    (root / "post" / "send.py").write_text("from billing_batch.engine import cycles\n")
    (root / "pipeline.py").write_text("from billing_batch.post.send import x\nfrom . import model\n")
    return root


def test_the_checks_pass_a_package_that_keeps_the_rules(toy: Path):
    edges = graph(toy)
    assert edges["billing_batch.pipeline"] == {"billing_batch.post.send", "billing_batch.model"}
    assert circle(edges) == [] and upward(edges) == []


def test_a_circle_put_back_is_found_even_inside_a_function(toy: Path):
    (toy / "model.py").write_text("def later():\n    from billing_batch import pipeline\n")
    found = circle(graph(toy))
    assert found[0] == found[-1] and "billing_batch.model" in found and "billing_batch.pipeline" in found


def test_an_engine_module_importing_a_later_stage_is_found(toy: Path):
    (toy / "engine" / "cycles.py").write_text("from ..post.send import deliver\n")
    assert upward(graph(toy)) == ["billing_batch.engine.cycles imports billing_batch.post.send"]
