"""Authoring: components, workflows and their policies. Pure library, no I/O of its own."""
