"""Tracebacks trimmed to the user's frames: framework frames (aiflow_nb's own code,
tenacity, asyncio, threads) are folded into one segment the viewer can expand.

``fold(text)`` splits a formatted traceback (``traceback.format_exception``, chained
exceptions included) into ``Segment``s in order: the lines to show and runs of
framework frames to fold. Joining every segment's lines gives the text back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["FRAMEWORK_PATHS", "Segment", "fold", "framework_frame"]

FRAMEWORK_PATHS: tuple[str, ...] = (
    "/aiflow_nb/",
    "/tenacity/",
    "/asyncio/",
    "/concurrent/futures/",
    "/threading.py",
    "/contextvars",
    "/anyio/",
)
"""Path fragments of frames that are the framework's, not the user's code."""

_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line \d+')


@dataclass
class Segment:
    """Consecutive lines of a traceback; ``frames`` framework frames when ``folded``."""

    lines: list[str] = field(default_factory=list)
    folded: bool = False
    frames: int = 0

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def framework_frame(path: str) -> bool:
    """Whether a frame in the file ``path`` is framework code (folded)."""
    norm = path.replace("\\", "/")
    return any(part in norm for part in FRAMEWORK_PATHS)


def fold(text: str) -> list[Segment]:
    """The traceback as shown lines and folded runs of framework frames, in order."""
    out: list[Segment] = []
    frame: list[str] | None = None
    frame_is_framework = False

    def push(lines: list[str], folded: bool) -> None:
        if out and out[-1].folded == folded:
            out[-1].lines.extend(lines)
        else:
            out.append(Segment(folded=folded))
            out[-1].lines.extend(lines)
        out[-1].frames += folded

    for line in text.splitlines():
        match = _FRAME.match(line)
        if match is not None:
            if frame is not None:
                push(frame, frame_is_framework)
            frame, frame_is_framework = [line], framework_frame(match["path"])
        elif frame is not None and line.startswith("    "):
            frame.append(line)  # the frame's source line and its ^^^ markers
        else:
            if frame is not None:
                push(frame, frame_is_framework)
                frame = None
            push([line], False)
    if frame is not None:
        push(frame, frame_is_framework)
    return out
