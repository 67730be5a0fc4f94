"""What the wheel installs: every package folder is listed in pyproject.toml (setuptools
cannot find a renamed one), the dashboard installs as ``aiflow_viewer`` (never a
top-level ``viewer``), and ``import aiflow_nb`` stays light though it re-exports ``show``."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from setuptools import find_packages

from support import ROOT


def test_pyproject_lists_every_package_folder() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = find_packages(str(ROOT), include=["aiflow_nb*"])
    viewer = ["aiflow_viewer", *(f"aiflow_viewer.{n}" for n in find_packages(str(ROOT / "viewer")))]
    assert sorted(config["packages"]) == sorted([*found, *viewer])
    assert config["package-dir"] == {"aiflow_viewer": "viewer"}
    assert "viewer" not in config["packages"]


def test_import_aiflow_nb_loads_neither_panel_nor_the_viewer_pages() -> None:
    code = (
        "import sys, aiflow_nb; "
        "print(callable(aiflow_nb.show), aiflow_nb.show.__module__, "
        "sorted(m for m in sys.modules if m.split('.')[0] in ('panel', 'bokeh', 'viewer') "
        "or m.startswith('aiflow_viewer.') and m != 'aiflow_viewer.show'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    assert out.stdout.split(maxsplit=2) == ["True", "aiflow_viewer.show", "[]\n"]
