"""The layers import downward only (docs/architecture.md draws the order).

Every import in ``aiflow_nb/`` and ``viewer/`` is read with ``ast`` — at module level and
inside functions alike; only ``if TYPE_CHECKING:`` blocks are exempt — and each one that
reaches a layer above its own fails the test with its file, line and statement. Two
upward hooks are allowed, and only these: ``access`` -> ``notebook`` (IPython display
hooks on ``RunHandle``) and ``config`` -> ``store`` (``configure()`` resets the connection).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FOUNDATION = {
    "errors",
    "defaults",
    "keys",
    "serialization",
    "redaction",
    "config",
    "version",
    "serving",
    "cancelling",
}
"""Modules at the root of the package that everything may use (and use each other)."""

TIERS: list[set[str]] = [
    {"foundation"},
    {"store"},
    {"events", "limits"},
    {"runtime"},
    {"authoring"},
    {"ops"},
    {"access"},
    {"trace", "llm"},
    {"api", "export", "viewer"},
    {"notebook"},
    {"examples"},
    {"cli"},
    {"aiflow_nb"},  # the package's __init__: the public API re-exports every layer
]
"""Foundation first; plug-ins sit on the tier of what they build on. A module may import
its own layer and any layer on a lower tier, nothing beside or above it."""

RANK = {layer: tier for tier, layers in enumerate(TIERS) for layer in layers}
HOOKS = {("access", "notebook"), ("aiflow_nb.config", "store")}
"""The two upward imports allowed: (importing layer or module, layer imported)."""
VIEWER_NAMES = {"viewer", "aiflow_viewer"}


def _sources() -> Iterator[Path]:
    yield from sorted((ROOT / "aiflow_nb").rglob("*.py"))
    yield from sorted((ROOT / "viewer").rglob("*.py"))


def _module(path: Path) -> list[str]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "viewer":
        parts[0] = "aiflow_viewer"
    return parts[:-1] if parts[-1] == "__init__" else parts


def _layer(module: list[str]) -> str | None:
    if module[0] in VIEWER_NAMES:
        return "viewer"
    if module[0] != "aiflow_nb":
        return None
    if len(module) == 1:
        return "aiflow_nb"
    return "foundation" if module[1] in FOUNDATION else module[1]


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for inner in ast.walk(node))
    return skipped


def _targets(node: ast.AST, here: list[str], is_package: bool) -> list[list[str]]:
    if isinstance(node, ast.Import):
        return [alias.name.split(".") for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = here if is_package else here[:-1]
        base = base[: len(base) - (node.level - 1)]
    else:
        base = []
    target = base + (node.module.split(".") if node.module else [])
    # ``from aiflow_nb import keys`` imports the module aiflow_nb.keys
    return [target + [alias.name] if len(target) == 1 else target for alias in node.names]


def upward_imports() -> list[str]:
    """``path:line: layer -> layer: statement`` for each import of a higher layer."""
    found = []
    for path in _sources():
        tree = ast.parse(path.read_text(), str(path))
        here = _module(path)
        mine = _layer(here)
        skipped = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            for target in _targets(node, here, path.name == "__init__.py"):
                theirs = _layer(target)
                if theirs is None or theirs == mine or mine is None:
                    continue
                hook = (mine, theirs) in HOOKS or (".".join(here), theirs) in HOOKS
                if RANK[theirs] >= RANK[mine] and not hook:
                    where = path.relative_to(ROOT)
                    found.append(f"{where}:{node.lineno}: {mine} -> {theirs}: {ast.unparse(node)}")
    return found


def test_every_layer_is_placed() -> None:
    layers = {_layer(_module(path)) for path in _sources()}
    assert layers <= set(RANK), f"layers missing from TIERS: {layers - set(RANK)}"


def test_no_module_imports_a_layer_above_its_own() -> None:
    bad = upward_imports()
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_the_checker_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    source = "def f():\n    from ..ops.submit import submit\n"
    node = ast.parse(source).body[0].body[0]  # type: ignore[attr-defined]
    here = ["aiflow_nb", "authoring", "workflow"]
    assert _targets(node, here, is_package=False) == [["aiflow_nb", "ops", "submit"]]
    assert RANK[_layer(["aiflow_nb", "ops", "submit"]) or ""] > RANK["authoring"]
