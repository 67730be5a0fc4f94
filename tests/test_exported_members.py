"""The public API is deliberate: every module's ``__all__`` is exactly its public names,
sorted (httpx's ``tests/test_exported_members.py``, applied to every module; one with
public names and no ``__all__`` fails, ``defaults.py`` aside).

A module's public names are the names not starting with ``_`` that it defines at top
level (classes, functions, constants, type aliases), plus, in a package's
``__init__.py``, every name it imports from its own modules (``from .x import y``: it
re-exports them) and the names its ``__getattr__`` answers. Any module may also list
another imported name (a module, say): a deliberate re-export.
Names are sorted the way ruff's RUF022 sorts them (CONSTANTS, Classes, then the rest). The
modules are read with ``ast``, so the check imports nothing and sees what the source says.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import aiflow_nb

from support.ordering import ruff_order

ROOT = Path(aiflow_nb.__file__).parent.parent
PACKAGES = [p for p in (ROOT / "aiflow_nb", ROOT / "viewer") if p.is_dir()]

PLUMBING_CALLS = frozenset({"TypeVar", "ParamSpec", "TypeVarTuple", "getLogger"})
"""Top-level ``X = TypeVar(...)`` / ``log = logging.getLogger(...)``: typing and logging
plumbing, not API."""

PROTOCOL_HOOKS = {"aiflow_nb": frozenset({"load_ipython_extension", "unload_ipython_extension"})}
"""Functions a protocol looks up by name (``%load_ext``), not members for ``import *``."""

WITHOUT_ALL = frozenset({"aiflow_nb.defaults"})
"""Modules read as a namespace (``defaults.NAME``): every name is public, no ``__all__``."""


@dataclass
class Names:
    """What one module binds at top level, and its ``__all__`` (None when it has none)."""

    defined: set[str] = field(default_factory=set)
    imported: set[str] = field(default_factory=set)
    own: set[str] = field(default_factory=set)
    """The imported names that come from the package's own modules (``from .x import y``)."""
    all: list[str] | None = None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _is_plumbing(value: ast.expr | None) -> bool:
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    return name in PLUMBING_CALLS


def _targets(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Tuple | ast.List):
        return [name for elt in node.elts for name in _targets(elt)]
    return []


def _literal_all(value: ast.expr | None) -> list[str]:
    names = ast.literal_eval(value) if value is not None else None
    assert isinstance(names, list | tuple), "__all__ must be a literal list of names"
    return [str(n) for n in names]


def _assign(node: ast.Assign | ast.AnnAssign, names: Names) -> None:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    bound = [name for target in targets for name in _targets(target)]
    if bound == ["__all__"]:
        names.all = _literal_all(node.value)
    elif node.value is not None and not _is_plumbing(node.value):
        names.defined.update(bound)


def _import(node: ast.Import | ast.ImportFrom, names: Names) -> None:
    if isinstance(node, ast.ImportFrom) and node.module == "__future__":
        return
    for alias in node.names:
        assert alias.name != "*", "a star import hides what the module binds"
        name = alias.asname or alias.name.split(".")[0]
        names.imported.add(name)
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            names.own.add(name)


def _lazy(node: ast.FunctionDef) -> set[str]:
    """The names a module ``__getattr__`` answers (``if name == "RunWidget": ...``)."""
    return {
        c.value
        for cmp in ast.walk(node)
        if isinstance(cmp, ast.Compare)
        for c in cmp.comparators
        if isinstance(c, ast.Constant) and isinstance(c.value, str)
    }


def _collect(body: list[ast.stmt], names: Names) -> None:
    for node in body:
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            names.defined |= _lazy(node)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.defined.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            _assign(node, names)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            _import(node, names)
        elif isinstance(node, ast.If):
            _collect([] if _is_type_checking(node.test) else node.body, names)
            _collect(node.orelse, names)
        elif isinstance(node, ast.Try):
            for part in (node.body, *(h.body for h in node.handlers), node.orelse):
                _collect(part, names)
        elif isinstance(node, ast.With):
            _collect(node.body, names)


def module_names(path: Path) -> Names:
    names = Names()
    _collect(ast.parse(path.read_text(), str(path)).body, names)
    return names


def _dotted(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_dotted(p): p for pkg in PACKAGES for p in sorted(pkg.rglob("*.py"))}


def public_names(module: str, path: Path, names: Names) -> set[str]:
    """The names ``__all__`` must hold exactly."""
    public = {name for name in names.defined if not name.startswith("_")}
    if path.name == "__init__.py":
        public |= {name for name in names.own if not name.startswith("_")}
    listed = set(names.all or ())
    public |= listed & names.imported  # deliberate re-exports
    public |= {name for name in listed & names.defined if _is_dunder(name)}  # __version__
    return public - PROTOCOL_HOOKS.get(module, frozenset())


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_all_is_exactly_the_public_names_and_sorted(module: str) -> None:
    path = MODULES[module]
    names = module_names(path)
    public = public_names(module, path, names)
    if names.all is None:
        assert not public or module in WITHOUT_ALL, f"{module} has public names, no __all__"
        return
    listed = set(names.all)
    assert not public - listed, f"{module}: public but missing from __all__"
    assert not listed - public, f"{module}: in __all__ but not bound (or private)"
    assert names.all == sorted(names.all, key=ruff_order), f"{module}: __all__ is not sorted"
    assert len(names.all) == len(listed), f"{module}: __all__ lists a name twice"


def test_top_level_names_exist() -> None:
    """What ``from aiflow_nb import *`` gives: every listed name, and nothing unlisted."""
    assert aiflow_nb.__all__ == sorted(aiflow_nb.__all__, key=ruff_order)
    for name in aiflow_nb.__all__:
        assert hasattr(aiflow_nb, name), name
    members = {
        name
        for name, value in vars(aiflow_nb).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("aiflow_nb")
        and not isinstance(value, type(aiflow_nb))
    }
    members -= PROTOCOL_HOOKS["aiflow_nb"]
    assert members <= set(aiflow_nb.__all__), members - set(aiflow_nb.__all__)


def test_import_aiflow_nb_does_not_load_the_api_layer() -> None:
    """The core sits below the REST layer: ``ApiError`` is not re-exported at the top, so
    importing the package loads neither ``aiflow_nb.api`` nor FastAPI."""
    code = (
        "import sys, aiflow_nb; "
        "print(sorted(m for m in sys.modules if m == 'fastapi' or m.startswith('aiflow_nb.api')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_collector_sees_what_a_module_binds(tmp_path: Path) -> None:
    """The reader the check relies on: defined vs imported, TYPE_CHECKING and plumbing."""
    source = tmp_path / "mod.py"
    source.write_text(
        "from __future__ import annotations\n"
        "import logging\n"
        "from typing import TYPE_CHECKING, TypeVar\n"
        "from .other import Thing as Alias\n"
        "if TYPE_CHECKING:\n    from .hidden import Hidden\n"
        "__all__ = ['Alias', 'CONST', 'Klass', 'func']\n"
        "T = TypeVar('T')\nlog = logging.getLogger('x')\nCONST, _private = 1, 2\n"
        "class Klass: ...\n"
        "def func() -> None: ...\n"
    )
    names = module_names(source)
    assert names.defined == {"CONST", "_private", "Klass", "func"}
    assert names.imported == {"logging", "TYPE_CHECKING", "TypeVar", "Alias"}
    assert public_names("mod", source, names) == {"Alias", "CONST", "Klass", "func"}
