"""Helpers shared by the tests (fixtures stay in ``conftest.py``).

``tests/`` is on ``sys.path`` (pytest's ``pythonpath`` setting), so test modules import
``support.api``, ``support.trace``, ... and the subprocesses a test starts, given
``PYTHONPATH``, import the same modules (and ``apps.*``) under the same names.
Modules of this package import each other relatively, so ``tests.support.browser``
(the viewer benchmark's import) works too.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PYTHONPATH", "ROOT", "TESTS"]

ROOT = Path(__file__).resolve().parents[2]
"""The repository's root."""
TESTS = ROOT / "tests"
PYTHONPATH = os.pathsep.join([str(ROOT), str(TESTS)])
"""``PYTHONPATH`` for a subprocess: the checkout, and ``support``/``apps`` by name."""
