"""IPython magics: ``%%component``, ``%%workflow`` and ``%aiflow``.

::

    %%component fetch --retries 3 --backoff exponential --cache 1h --timeout 30
    import httpx
    def fetch(url: str) -> str:
        return httpx.get(url).text

    %aiflow                                 # one line per subcommand
    %aiflow run pipeline topic='redis'      # start a run and show it live (inputs checked)
    %aiflow attach 3f2a...                  # history, then the live tail
    %aiflow resume 3f2a...                  # continue a stalled or failed run
    %aiflow rerun 3f2a... --steps b n=4     # rerun: replay what is valid, execute the rest
    %aiflow cancel 3f2a...
    %aiflow respond 3f2a... approve true
    %aiflow runs --workflow pipeline --status failed --limit 10
    %aiflow worker start|stop|status
    %aiflow viewer
"""

from __future__ import annotations

import argparse
import ast
import io
import shlex
import tokenize
from collections.abc import Callable
from typing import Any, cast

import orjson
from IPython.core import magic, magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import Magics, magics_class
from IPython.core.magic_arguments import MagicArgumentParser

from ..access.handle import RunHandle, attach
from ..access.rerun import rerun
from ..access.runs import runs
from ..access.start import resume
from ..authoring import registry
from ..authoring.interface import check_inputs
from ..authoring.workflow import Workflow
from ..errors import AiflowError, InvalidInputs, RunStateError, WorkflowNotFound
from ..events.status import RECORDED, RunStatus
from ..ops.code import load_workflow, notebook_workflows
from ..ops.local import ensure_local_worker, stop_local_worker
from .cells import ComponentOptions, WorkflowOptions, parse_duration
from .display import display_run
from .session import CodeSession, Definition
from .status import kernel_status

__all__ = [
    "RERUN_USAGE",
    "AiflowMagics",
    "Decorator",
    "argument",
    "arguments",
    "cell_magic",
    "line_magic",
    "parse_argstring",
    "parse_inputs",
    "parse_rerun",
    "said",
    "short_help",
]

# IPython's decorators are untyped; these are the same objects, typed.
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
cell_magic = cast(Decorator, magic.cell_magic)
line_magic = cast(Decorator, magic.line_magic)
arguments = cast(Callable[[], Decorator], magic_arguments.magic_arguments)
argument = cast(Callable[..., Decorator], magic_arguments.argument)
parse_argstring = cast(Callable[[Any, str], Any], magic_arguments.parse_argstring)


def parse_inputs(text: str) -> dict[str, Any]:
    """``"n=3 topic=redis tags=['a', 'b']"`` -> inputs: each value is a Python literal
    (spaces allowed inside brackets and quotes), else its text as a string."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text.strip()).readline))
    except (tokenize.TokenError, SyntaxError) as exc:
        raise InvalidInputs(f"cannot read inputs {text!r}: {exc}") from None
    line = text.strip()
    keys: list[tuple[str, int, int]] = []  # name, where it starts, where its value starts
    depth = 0
    for tok, nxt in zip(tokens, tokens[1:], strict=False):
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif (
            depth == 0
            and tok.type == tokenize.NAME
            and nxt.type == tokenize.OP
            and nxt.string == "="
            and (not keys or tok.start[1] > keys[-1][2])
        ):
            keys.append((tok.string, tok.start[1], nxt.end[1]))
    if line and (not keys or line[: keys[0][1]].strip()):
        raise InvalidInputs(f"expected key=value ..., got {line!r}")
    inputs: dict[str, Any] = {}
    for (key, _, value_at), following in zip(keys, [*keys[1:], None], strict=False):
        raw = line[value_at : following[1] if following else len(line)].strip()
        try:
            inputs[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            inputs[key] = raw
    return inputs


RERUN_USAGE = "usage: %aiflow rerun RUN_ID [--steps a,b] [key=value ...]"


def parse_rerun(text: str) -> tuple[str, list[str] | None, dict[str, Any]]:
    """``"3f2a --steps b,c n=4"`` -> the run id, the steps (None: not given) and the
    inputs (``parse_inputs``); ``UsageError`` for a line that is not that."""
    run_id, _, rest = text.strip().partition(" ")
    if not run_id or run_id.startswith("-"):
        raise UsageError(RERUN_USAGE)
    steps: list[str] | None = None
    rest = rest.strip()
    if rest.startswith("--steps"):
        flag, _, rest = rest.partition(" ")
        value = flag.partition("=")[2] if "=" in flag else None
        if value is None:
            value, _, rest = rest.strip().partition(" ")
        steps = [s.strip() for s in value.split(",") if s.strip()]
        if not steps:
            raise UsageError(f"--steps names no step; {RERUN_USAGE}")
    elif rest.startswith("-"):
        raise UsageError(f"unknown option {rest.split()[0]!r}; {RERUN_USAGE}")
    try:
        return run_id, steps, parse_inputs(rest)
    except InvalidInputs as exc:
        raise UsageError(f"{exc}; {RERUN_USAGE}") from None


def _parser() -> MagicArgumentParser:
    parser: MagicArgumentParser = cast(Any, MagicArgumentParser)(prog="%aiflow", add_help=False)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start a run and show it live")
    run.add_argument("workflow")  # parsed by %aiflow itself (Python literals); listed here
    run.add_argument("inputs", nargs="*", metavar="key=value")  # so help and errors name it
    sub.add_parser("attach", help="show a run: history, then live").add_argument("run_id")
    sub.add_parser("resume", help="continue a run from its journal").add_argument("run_id")
    again = sub.add_parser("rerun", help="a new run replaying a finished run's valid steps")
    again.add_argument("run_id")  # parsed by parse_rerun; listed here for help and errors
    again.add_argument("--steps", metavar="a,b")
    again.add_argument("inputs", nargs="*", metavar="key=value")
    sub.add_parser("cancel", help="cancel a run").add_argument("run_id")
    answer = sub.add_parser("respond", help="answer a run's wait_for_input (JSON value)")
    answer.add_argument("run_id")
    answer.add_argument("name")
    answer.add_argument("value", help="JSON, e.g. true or '{\"pages\": [1, 2]}'")
    ls = sub.add_parser("runs", help="recent runs as a DataFrame")
    ls.add_argument("--workflow", "-w")
    ls.add_argument("--status", "-s", choices=list(RECORDED))
    ls.add_argument("--limit", "-n", type=int, default=20)
    worker = sub.add_parser("worker", help="the in-kernel worker")
    worker.add_argument("action", choices=["start", "stop", "status"])
    sub.add_parser("status", help="Redis, live workers, in-kernel worker")
    sub.add_parser("viewer", help="the dashboard (or one run's page), inline").add_argument(
        "run_id", nargs="?"
    )
    return parser


def said(definition: Definition) -> str:
    """What a ``%%component`` / ``%%workflow`` cell prints about what it defined."""
    what = f"{definition.kind} {definition.name} v{definition.version}"
    if definition.registered:
        return f"{what} registered"
    return (
        f"{what} defined in this kernel; Redis is unreachable, so its code is registered "
        "when Redis is back (workers elsewhere cannot run it until then)"
    )


def short_help(parser: MagicArgumentParser) -> str:
    """``%aiflow``'s subcommands, one line each (what ``%aiflow`` alone prints)."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    usages = {name: " ".join([name, *_words(p)]) for name, p in sub.choices.items()}
    width = max(len(u) for u in usages.values())
    lines = [f"  %aiflow {usages[a.dest]:<{width}}  {a.help}" for a in sub._choices_actions]
    return "\n".join(["%aiflow SUBCOMMAND ... (%aiflow? for details):", *lines])


def _words(parser: argparse.ArgumentParser) -> list[str]:
    """A subcommand's arguments for its usage line: ``RUN_ID``, ``[RUN_ID]``,
    ``[key=value ...]``, ``start|stop|status``, ``[options]``."""
    words, options = [], False
    for action in parser._actions:
        if action.option_strings:
            options = options or not isinstance(action, argparse._HelpAction)
            continue
        if action.choices:
            word = "|".join(str(c) for c in action.choices)
        else:
            word = str(action.metavar or action.dest.upper())
        words.append({"?": f"[{word}]", "*": f"[{word} ...]"}.get(str(action.nargs), word))
    return [*words, *(["[options]"] if options else [])]


@magics_class
class AiflowMagics(Magics):
    """The magics of one kernel; ``session`` holds its registered cells."""

    def __init__(self, shell: Any, session: CodeSession | None = None) -> None:
        super().__init__(shell)
        self.session = session or CodeSession()
        self.parser = _parser()

    @property
    def user_ns(self) -> dict[str, Any]:
        assert self.shell is not None, "the magics are not registered on a shell"
        return cast(dict[str, Any], self.shell.user_ns)

    # --- cells --------------------------------------------------------------------
    @arguments()
    @argument("name", help="the component's name in the notebook and on workers")
    @argument("--retries", type=int, help="retries after the first attempt (N+1 attempts)")
    @argument("--backoff", choices=["exponential", "fixed"], help="wait between retries")
    @argument("--cache", help="cache outputs across runs for TTL (30, 10m, 1h, 7d)")
    @argument("--timeout", help="seconds each attempt may take (30, 1.5s, 2m)")
    @cell_magic
    def component(self, line: str, cell: str) -> None:
        """Define the cell's one function as a component and register its source."""
        args = parse_argstring(self.component, line)
        options = ComponentOptions(
            retries=args.retries,
            backoff=args.backoff,
            cache=None if args.cache is None else parse_duration(args.cache, "--cache"),
            timeout=None if args.timeout is None else parse_duration(args.timeout, "--timeout"),
        )
        self.register_pending()
        definition = self.session.define("component", args.name, cell, self.user_ns, options)
        print(said(definition))

    @arguments()
    @argument("name", help="the workflow's name in the notebook and on workers")
    @argument("--retention", help="keep its finished runs this long (3600, 90s, 12h, 7d)")
    @cell_magic
    def workflow(self, line: str, cell: str) -> None:
        """Define the cell's one function as a workflow and register it with every cell
        defined so far, so out-of-kernel workers can run it."""
        args = parse_argstring(self.workflow, line)
        kept = None if args.retention is None else parse_duration(args.retention, "--retention")
        options = WorkflowOptions(retention=kept)
        self.register_pending()
        definition = self.session.define("workflow", args.name, cell, self.user_ns, options)
        print(said(definition))

    def register_pending(self, result: Any = None) -> None:
        """Register the cells defined while Redis was unreachable, saying so in the cell's
        output when it happens (also the ``post_run_cell`` callback: ``result`` unused)."""
        if not (self.session.pending or self.session.unbundled):
            return
        done = self.session.register_pending()
        if done:
            print(f"aiflow-nb: Redis is back; registered {', '.join(done)}")

    # --- %aiflow -----------------------------------------------------------------
    @line_magic
    def aiflow(self, line: str) -> Any:
        """``%aiflow run|attach|resume|rerun|cancel|respond|runs|worker|status|viewer ...``
        (``%aiflow`` alone: one line per subcommand)."""
        self.register_pending()
        command, _, rest = line.strip().partition(" ")
        if not command:
            print(short_help(self.parser))
            return None
        if command == "run":  # its inputs are Python literals: not shell words
            name, _, inputs = rest.strip().partition(" ")
            if not name:
                raise UsageError("usage: %aiflow run WORKFLOW [key=value ...]")
            return self._run(name, parse_inputs(inputs))
        if command == "rerun":  # its inputs are Python literals too
            return self._rerun(*parse_rerun(rest))
        args = self.parser.parse_args(shlex.split(line))
        return getattr(self, f"_{args.command}")(args)

    def _run(self, name: str, inputs: dict[str, Any]) -> RunHandle:
        handle = self.start(name, inputs)
        display_run(handle)
        return handle

    def start(self, name: str, inputs: dict[str, Any]) -> RunHandle:
        """Start workflow ``name``: this kernel's, else this process's, else the latest
        registered by any kernel."""
        wf = self.session.workflows().get(name)
        if wf is None:
            try:
                wf = registry.get(name)
            except WorkflowNotFound:
                bundles = notebook_workflows()
                if name not in bundles:
                    raise WorkflowNotFound(name, [*registry.names(), *bundles]) from None
                wf = load_workflow(bundles[name])
        assert isinstance(wf, Workflow)
        return wf.start(**check_inputs(wf, inputs))

    def _attach(self, args: Any) -> RunHandle:
        handle = attach(args.run_id)
        display_run(handle)
        return handle

    def _resume(self, args: Any) -> RunHandle:
        """Continue an interrupted, failed or stalled run from its journal, and show it.
        A run already queued is not queued twice: a worker that can run it is started."""
        handle = attach(args.run_id)
        rec = handle.record()
        if rec["status"] == RunStatus.QUEUED:
            ensure_local_worker(workflow=rec["workflow"], code=bool(rec.get("code")))
        else:
            try:
                handle = resume(args.run_id)
            except RunStateError as exc:
                raise UsageError(str(exc)) from None
        display_run(handle)
        return handle

    def _rerun(self, run_id: str, steps: list[str] | None, inputs: dict[str, Any]) -> RunHandle:
        """Rerun a finished run with this kernel's current code, and show the new run
        live (its replayed steps say which run they replay)."""
        try:
            handle = rerun(run_id, inputs=inputs or None, steps=steps)
        except RunStateError as exc:  # as %aiflow resume: not finished is a usage error
            raise UsageError(str(exc)) from None
        display_run(handle)
        return handle

    def _cancel(self, args: Any) -> None:
        print(f"run {args.run_id}: {attach(args.run_id).cancel()}")

    def _respond(self, args: Any) -> None:
        try:
            value = orjson.loads(args.value)
        except orjson.JSONDecodeError as exc:
            raise UsageError(f"the answer must be JSON ({exc}), e.g. true or '\"yes\"'") from None
        try:
            attach(args.run_id).respond(args.name, value)
        except AiflowError as exc:  # refused (invalid, answered, no such wait): say why
            raise UsageError(str(exc)) from None
        print(f"run {args.run_id}: answered {args.name!r}; it resumes")

    def _runs(self, args: Any) -> Any:
        return runs(workflow=args.workflow, status=args.status, limit=args.limit)

    def _worker(self, args: Any) -> None:
        started = False
        if args.action == "start":
            started = ensure_local_worker(force=True) is not None
        elif args.action == "stop":
            stop_local_worker()
        print(kernel_status(started=started).line())

    def _status(self, args: Any) -> None:
        print(kernel_status().line())

    def _viewer(self, args: Any) -> Any:
        """The Panel dashboard inline: one run's page, or the runs table."""
        try:
            from aiflow_viewer.inline import InlineViewer, load_inline
            from aiflow_viewer.show import show
        except ImportError:
            print(
                "the dashboard is not part of this install; start it in a terminal with "
                "`aiflow viewer` and open the URL it prints"
            )
            return None
        if args.run_id:
            return show(args.run_id)
        load_inline()
        return InlineViewer().layout
