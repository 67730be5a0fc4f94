"""Access: reading runs from Python (handles, spans, listings)."""
