"""The compact event document: no run id (the stream's), no null or empty fields; read
back, an ``Event`` has every field, and documents in the older full shape read the same."""

from __future__ import annotations

from aiflow_nb.events.model import FIELD, Event, make_payload
from aiflow_nb.serialization import dumps, loads


def test_a_document_leaves_out_the_run_id_and_null_fields() -> None:
    doc = loads(make_payload("run.cancelled", "r1", ts=5.0))
    assert doc == {"type": "run.cancelled", "ts": 5.0}
    doc = loads(make_payload("span.started", "r1", span_id="s", name="n", data={"k": 1}, ts=1))
    assert doc == {"type": "span.started", "ts": 1, "span_id": "s", "name": "n", "data": {"k": 1}}
    assert loads(make_payload("span.retrying", "r1", attempt=0, ts=1))["attempt"] == 0


def test_compact_and_full_documents_read_as_the_same_event() -> None:
    compact = {FIELD: make_payload("span.completed", "r1", span_id="s", attempt=2, ts=3.0)}
    full = {
        FIELD: dumps(
            {
                "type": "span.completed",
                "ts": 3.0,
                "run_id": "r1",
                "span_id": "s",
                "parent_id": None,
                "name": None,
                "attempt": 2,
                "data": {},
            }
        )
    }
    a, b = Event.from_entry(b"1-0", compact, "r1"), Event.from_entry("1-0", full, "r1")
    assert a == b
    assert a.to_dict() == {
        "id": "1-0",
        "type": "span.completed",
        "ts": 3.0,
        "run_id": "r1",
        "span_id": "s",
        "parent_id": None,
        "name": None,
        "attempt": 2,
        "data": {},
    }
