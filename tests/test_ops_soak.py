"""Soak: 200 runs of a 10-step workflow across 3 worker processes while a chaos loop
SIGKILLs a random worker every few seconds and starts a new one (the parts and the
invariants checked of every run: ``support/soak.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.soak import Chaos, soak


def _kill(chaos: Chaos, submitted: int) -> None:
    if chaos.due():
        chaos.kill()


@pytest.mark.slow
def test_soak_200_runs_under_random_sigkills(tmp_path: Path) -> None:
    done = soak(tmp_path, 7, _kill, lambda chaos: chaos.kills >= 6)
    print(f"soak: {done.chaos.kills} kills, {done.resumed} interrupted attempts resumed")
    assert done.chaos.kills >= 6 and done.resumed > 0  # the chaos really hit runs in flight
