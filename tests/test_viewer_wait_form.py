"""The wait form's widgets, built in-process for each kind of schema (no browser):
the right input for the schema, labelled with the wait's name, and no deprecated Panel
arguments (``name=``, ``button_type=``: Panel 2.0 drops them; the test settings make
warnings errors)."""

from __future__ import annotations

from typing import Any

import panel as pn
import pytest

from aiflow_viewer.wait_form import WaitForm


@pytest.mark.parametrize(
    ("schema", "widget", "label"),
    [
        ({"type": "integer"}, pn.widgets.IntInput, "go"),
        ({"type": "number"}, pn.widgets.FloatInput, "go"),
        ({"type": "string"}, pn.widgets.TextInput, "go"),
        ({"enum": ["a", 2]}, pn.widgets.Select, "go"),
        ({}, pn.widgets.TextAreaInput, "go (JSON)"),
        ({"type": "object"}, pn.widgets.TextAreaInput, "go (JSON)"),
    ],
)
def test_each_schema_gets_its_labelled_input_and_a_submit_button(
    schema: dict[str, Any], widget: type, label: str
) -> None:
    form = WaitForm("r1", {"name": "go", "kind": "event", "schema": schema})
    assert type(form.field) is widget and form.field.label == label
    assert [(b.label, b.color) for b in form.buttons] == [("Submit", "primary")]


def test_a_boolean_gets_approve_and_reject() -> None:
    form = WaitForm("r1", {"name": "ok", "kind": "input", "schema": {"type": "boolean"}})
    assert form.field is None
    assert [(b.label, b.color) for b in form.buttons] == [
        ("Approve", "success"),
        ("Reject", "danger"),
    ]
