"""The trace data layer behind the viewer: an incremental span tree, timeline rows,
run totals, the runs table, and a live follower of a run's stream."""

from __future__ import annotations

from .follow import Follower
from .runtable import RUN_TABLE_COLUMNS, RunIndex
from .timeline import STATUS_COLORS, publish_points, timeline_rows
from .totals import RunTotals
from .tree import TREE_COLUMNS, SpanTree, TreeRow

__all__ = [
    "RUN_TABLE_COLUMNS",
    "STATUS_COLORS",
    "TREE_COLUMNS",
    "Follower",
    "RunIndex",
    "RunTotals",
    "SpanTree",
    "TreeRow",
    "publish_points",
    "timeline_rows",
]
