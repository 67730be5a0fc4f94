"""Example workflows, used by ``aiflow demo``, the notebooks and the tests."""
