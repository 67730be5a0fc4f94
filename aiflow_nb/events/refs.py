"""Values stored once: events carry a small value itself, a large one by reference.

A run's inputs and output live in its record, a step's result in its journal. An event
that shows one (``run.queued``, the root ``span.started``, ``run.completed``,
``span.completed`` / ``span.cached`` / ``span.replayed``) carries it under its name when
its JSON is at most ``defaults.EVENT_VALUE_INLINE_BYTES``; otherwise it carries
``<name>_ref`` instead::

    {"at": "record", "field": "output", "bytes": 52428800, "preview": "{\"text\": \"aaa…"}
    {"at": "journal", "field": "<step key>", "bytes": 2097152, "preview": "..."}
    {"bytes": 2097152, "preview": "..."}   # stored nowhere else (a step's arguments):
                                          # the event shows only this much

``mask`` (a list of input names) rides a reference to inputs whose secret arguments the
event would have shown as ``***``. Readers that show the value resolve the reference
(``resolve`` / ``aresolve``: one HMGET per key); the others use ``preview`` and ``bytes``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from .. import defaults, keys
from ..redaction import Redactor
from ..serialization import dumps, loads

__all__ = ["JOURNAL", "RECORD", "REF", "aresolve", "ref_of", "resolve", "resolved", "value_fields"]

REF = "_ref"
"""Suffix of the data key that holds a reference (``output`` -> ``output_ref``)."""

RECORD, JOURNAL = "record", "journal"


def value_fields(
    name: str,
    value: Any,
    encoded: bytes | None = None,
    *,
    at: str | None = None,
    field: str | None = None,
    mask: Iterable[str] = (),
    size: int | None = None,
) -> dict[str, Any]:
    """``{name: value}``, or ``{name + "_ref": ...}`` when ``value``'s JSON (``encoded``,
    if known: the preview is cut from it, so never pass one holding more than ``value``)
    is over the inline size; ``at``/``field`` say where it is stored (none: nowhere
    else, the reference only previews it). ``size``: about the JSON's length, when known
    (a value under the inline size is then not encoded again here)."""
    if encoded is None and size is not None and size <= defaults.EVENT_VALUE_INLINE_BYTES:
        return {name: value}
    data = encoded if encoded is not None else dumps(value, f"event value {name!r}")
    if len(data) <= defaults.EVENT_VALUE_INLINE_BYTES:
        return {name: value}
    preview = data[: defaults.EVENT_VALUE_PREVIEW_CHARS * 4].decode("utf-8", "ignore")
    ref: dict[str, Any] = {
        "bytes": len(data),
        "preview": preview[: defaults.EVENT_VALUE_PREVIEW_CHARS],
    }
    if at is not None and field is not None:
        ref["at"], ref["field"] = at, field
    if mask:
        ref["mask"] = sorted(mask)
    return {name + REF: ref}


def ref_of(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The reference ``data`` holds for ``name``, if any."""
    ref = data.get(name + REF)
    return ref if isinstance(ref, dict) else None


def _target(run_id: str, ref: dict[str, Any]) -> tuple[str, str] | None:
    at, field = ref.get("at"), ref.get("field")
    if not isinstance(field, str):
        return None
    if at == RECORD:
        return keys.run(run_id), field
    if at == JOURNAL:
        return keys.run_journal(run_id), field
    return None


def _value(ref: dict[str, Any], raw: bytes | None, base: Redactor) -> tuple[bool, Any]:
    if raw is None:
        return False, None
    value = loads(raw)
    if ref.get("at") == JOURNAL:
        value = value.get("r") if isinstance(value, dict) else None
    # masked as the writer masks events: the record's inputs hold real secrets while the
    # run may need them; secret_args ride the reference as ``mask``
    mask = ref.get("mask")
    redactor = base  # the environment's secrets
    if mask and isinstance(value, dict):
        redactor = redactor.for_inputs(mask, value)
    elif redactor.may_hold(raw):
        redactor = redactor.for_inputs((), value)
    else:
        return True, value
    return True, redactor.apply(value)


def _wanted(
    run_id: str, items: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], str, dict[str, Any], tuple[str, str]]]:
    out = []
    for data in items:
        for key in [k for k in data if k.endswith(REF)]:
            ref = data[key]
            target = _target(run_id, ref) if isinstance(ref, dict) else None
            if target is not None:
                out.append((data, key[: -len(REF)], ref, target))
    return out


def resolved(data: dict[str, Any]) -> bool:
    """Whether ``data`` holds no reference a reader could resolve."""
    return not any(k.endswith(REF) and isinstance(data[k], dict) and "at" in data[k] for k in data)


def _apply(wanted: list[Any], targets: list[tuple[str, str]], replies: list[Any]) -> None:
    by_target = dict(zip(targets, replies, strict=True))
    base = Redactor.from_environment()  # once per read, not per reference
    for data, name, ref, target in wanted:
        found, value = _value(ref, by_target[target], base)
        if found:
            data[name] = value
            del data[name + REF]


def resolve(client: Any, run_id: str, items: list[dict[str, Any]]) -> None:
    """Put the stored values in place of the references in each event ``data`` of
    ``items`` (in place; one pipelined HGET per stored value). A value gone (the run was
    deleted) leaves its reference."""
    wanted = _wanted(run_id, items)
    if not wanted:
        return
    targets = list(dict.fromkeys(target for *_, target in wanted))  # each value read once
    pipe = client.pipeline(transaction=False)
    for key, field in targets:
        pipe.hget(key, field)
    _apply(wanted, targets, cast("list[bytes | None]", pipe.execute()))


async def aresolve(client: Any, run_id: str, items: list[dict[str, Any]]) -> None:
    """Async twin of ``resolve``."""
    wanted = _wanted(run_id, items)
    if not wanted:
        return
    targets = list(dict.fromkeys(target for *_, target in wanted))
    pipe = client.pipeline(transaction=False)
    for key, field in targets:
        pipe.hget(key, field)
    _apply(wanted, targets, cast("list[bytes | None]", await pipe.execute()))
