"""The public API is deliberate: ``__all__`` is complete and sorted."""

from __future__ import annotations

import aiflow_nb


def test_all_is_sorted_and_names_exist() -> None:
    assert aiflow_nb.__all__ == sorted(aiflow_nb.__all__)
    for name in aiflow_nb.__all__:
        assert hasattr(aiflow_nb, name), name


def test_every_public_member_is_exported() -> None:
    members = {
        name
        for name, value in vars(aiflow_nb).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("aiflow_nb")
        and not isinstance(value, type(aiflow_nb))
    }
    members -= {"load_ipython_extension", "unload_ipython_extension"}
    assert members <= set(aiflow_nb.__all__), members - set(aiflow_nb.__all__)
