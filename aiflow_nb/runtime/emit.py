"""``publish`` and ``progress``: events a component emits about itself."""

from __future__ import annotations

from typing import Any

from .context import current_frame, current_run

__all__ = ["progress", "publish", "set_attributes"]


def _emit(type: str, name: str | None, data: dict[str, Any]) -> bool:
    ctx, frame = current_run(), current_frame()
    if ctx is None or frame is None:
        return False
    ctx.writer.emit(type, span_id=frame.span_id, parent_id=frame.parent_id, name=name, data=data)
    return True


def publish(label: str, data: Any = None) -> bool:
    """Emit a ``publish`` event labelled ``label`` from the current span.

    Returns False (and does nothing) outside a run. ``data`` must be JSON-serialisable.
    """
    return _emit("publish", label, {"label": label, "value": data})


def progress(done: float, total: float | None = None, message: str = "") -> bool:
    """Emit a ``progress`` event (``done`` of ``total``) from the current span.

    Example: ``progress(i, len(pages), f"summarised {url}")``. False outside a run.
    """
    if total is not None and total < 0:
        raise ValueError(f"progress total must be >= 0, got {total}")
    return _emit("progress", None, {"done": done, "total": total, "message": message})


def set_attributes(**attributes: Any) -> bool:
    """Attach attributes to the current span; they ride its ``span.completed``/``failed``.

    Example: ``set_attributes(**{"gen_ai.request.model": "gpt-4o-mini"})``. Values must be
    JSON-serialisable. Returns False (and does nothing) outside a run.
    """
    frame = current_frame()
    if current_run() is None or frame is None:
        return False
    frame.attributes.update(attributes)
    return True
