"""The form of a parked run's open wait on its page, built from the wait's JSON Schema
(the notebook widget's ``aiflow_nb.notebook.form`` in Panel): ``boolean`` -> Approve /
Reject buttons, ``enum`` -> a select, ``integer`` / ``number`` / ``string`` -> a typed
input, anything else -> a JSON text area. Submitting answers the wait
(``ops/answer.respond``, recorded as answered by ``dashboard``); a refusal is shown under
the form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import panel as pn

from aiflow_nb.errors import AiflowError
from aiflow_nb.ops.answer import respond, send

from .namespace import bound
from .style import esc

__all__ = ["WaitForm"]


class WaitForm:
    """The form of ``wait`` (a record's open wait) of run ``run_id``; ``layout`` shows it."""

    def __init__(self, run_id: str, wait: dict[str, Any]) -> None:
        self.run_id, self.wait = run_id, wait
        self.name = str(wait.get("name"))
        self.status = pn.pane.HTML("", css_classes=["aiflow-wait-status"])
        self.field: Any = None
        self.buttons: list[pn.widgets.Button] = []
        self.answered: str | None = None
        """What this form said when it answered the wait (the page keeps it shown)."""
        prompt = wait.get("prompt") or f"The run waits for {wait.get('kind')} {self.name!r}"
        title = pn.pane.HTML(f'<div class="aiflow-wait-prompt">{esc(prompt)}</div>')
        self.layout = pn.Column(
            title, *self._inputs(wait.get("schema") or {}), self.status, name="wait-form"
        )

    def _inputs(self, schema: dict[str, Any]) -> list[Any]:
        kind = schema.get("type")
        if kind == "boolean":
            return [
                pn.Row(
                    self._button("Approve", "success", lambda: True),
                    self._button("Reject", "danger", lambda: False),
                )
            ]
        if "enum" in schema:
            options = {orjson.dumps(v).decode(): v for v in schema["enum"]}
            self.field = pn.widgets.Select(label=self.name, options=options)
        elif kind == "integer":
            self.field = pn.widgets.IntInput(label=self.name, value=0)
        elif kind == "number":
            self.field = pn.widgets.FloatInput(label=self.name, value=0.0)
        elif kind == "string":
            self.field = pn.widgets.TextInput(label=self.name)
        else:
            self.field = pn.widgets.TextAreaInput(
                label=f"{self.name} (JSON)", placeholder='e.g. {"pages": [1, 2]}'
            )
        return [self.field, self._button("Submit", "primary", self._value)]

    def _button(self, label: str, style: str, value: Callable[[], Any]) -> pn.widgets.Button:
        button = pn.widgets.Button(label=label, color=style, width=110)
        button.on_click(bound(lambda _e: self.answer(value)))  # in the run's namespace
        self.buttons.append(button)
        return button

    def _value(self) -> Any:
        value = self.field.value
        if isinstance(self.field, pn.widgets.TextAreaInput):
            return orjson.loads(value or "")
        return value

    def answer(self, value: Callable[[], Any]) -> None:
        """Answer with ``value()``; say what happened under the form."""
        how = send if self.wait.get("kind") == "event" else respond
        try:
            how(self.run_id, self.name, value(), by="dashboard")
        except orjson.JSONDecodeError as exc:
            self._say(f"not JSON: {exc}", error=True)
        except AiflowError as exc:
            self._say(str(exc), error=True)
        else:
            for button in self.buttons:
                button.disabled = True
            self.answered = f"answered {self.name!r} from this page: the run resumes"
            self._say(self.answered)

    def _say(self, text: str, error: bool = False) -> None:
        color = "#dc2626" if error else "#16a34a"
        self.status.object = f'<div style="color:{color}">{esc(text)}</div>'
