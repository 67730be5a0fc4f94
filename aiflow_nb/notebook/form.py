"""``WaitForm``: the ipywidgets form of a parked run's open wait, built from its JSON
Schema; submitting it answers the wait (``RunHandle.respond`` / ``send``).

- ``boolean`` -> Approve / Reject buttons;
- ``enum`` -> a dropdown;
- ``integer`` / ``number`` / ``string`` -> a text field of that type;
- anything else (objects, arrays, no schema) -> a JSON editor (a text area).

A refused answer (``InvalidInputs``, answered already) is shown under the form, which
stays; a recorded one disables it until the run's events close the wait.

Example::

    form = WaitForm(wait, submit=lambda value: handle.respond(wait["name"], value))
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import orjson

from ..errors import AiflowError

__all__ = ["WaitForm"]

_NUMBERS = {"integer": widgets.IntText, "number": widgets.FloatText}


class WaitForm(widgets.VBox):  # type: ignore[misc]
    """The form of one open wait (``wait``: the ``run.waiting`` event's data)."""

    def __init__(self, wait: dict[str, Any], submit: Callable[[Any], None]) -> None:
        self.wait = wait
        self.name = str(wait.get("name"))
        self._submit = submit
        schema = wait.get("schema") or {}
        self.status_html = widgets.HTML()
        self.field: widgets.Widget | None = None
        self.buttons: list[widgets.Button] = []
        prompt = wait.get("prompt") or f"The run waits for {wait.get('kind')} {self.name!r}"
        title = widgets.HTML(f'<div class="aiflow-wait-prompt">⏸ {html.escape(prompt)}</div>')
        super().__init__(children=[title, *self._inputs(schema), self.status_html])
        self.add_class("aiflow-wait-form")

    # --- building -------------------------------------------------------------
    def _inputs(self, schema: dict[str, Any]) -> list[widgets.Widget]:
        kind = schema.get("type")
        if kind == "boolean":
            yes = self._button("Approve", "success", lambda: True)
            no = self._button("Reject", "danger", lambda: False)
            return [widgets.HBox([yes, no])]
        if "enum" in schema:
            self.field = widgets.Dropdown(options=list(schema["enum"]), description=self.name)
        elif kind in _NUMBERS:
            self.field = _NUMBERS[kind](description=self.name)
        elif kind == "string":
            self.field = widgets.Text(description=self.name)
        else:
            self.field = widgets.Textarea(
                description=self.name, placeholder='JSON, e.g. {"pages": [1, 2]}'
            )
        send = self._button("Submit", "primary", self._value)
        return [self.field, send]

    def _button(self, label: str, style: str, value: Callable[[], Any]) -> widgets.Button:
        button = widgets.Button(description=label, button_style=style)
        button.on_click(lambda _b: self._answer(value))
        self.buttons.append(button)
        return button

    def _value(self) -> Any:
        assert self.field is not None
        value = self.field.value
        if isinstance(self.field, widgets.Textarea):
            return orjson.loads(value)  # JSONDecodeError: shown by _answer
        return value

    def close(self) -> None:
        for child in [*self.children, *self.buttons, self.field]:
            if child is not None:
                child.close()
        super().close()

    # --- answering --------------------------------------------------------------
    def _answer(self, value: Callable[[], Any]) -> None:
        try:
            self._submit(value())
        except orjson.JSONDecodeError as exc:
            self._say(f"not JSON: {exc}", error=True)
        except AiflowError as exc:  # invalid, answered already, no longer waiting
            self._say(str(exc), error=True)
        else:
            for button in self.buttons:
                button.disabled = True
            self._say("answered: the run resumes")

    def _say(self, text: str, error: bool = False) -> None:
        color = "#dc2626" if error else "#16a34a"
        self.status_html.value = f'<div style="color:{color}">{html.escape(text)}</div>'
