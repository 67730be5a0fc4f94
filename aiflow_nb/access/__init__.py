"""Access: reading runs from Python (handles, spans, listings) and starting them."""

from . import start  # noqa: F401 - installs Workflow.start's starter
