"""The REST API: every workflow as an endpoint, run streams as SSE/NDJSON, API keys and
scoped run tokens. It talks to Redis only (see ``app.py``)."""

from .app import create_app
from .config import ApiConfig
from .errors import ApiError
from .server import ServerThread, serve

__all__ = ["ApiConfig", "ApiError", "ServerThread", "create_app", "serve"]
