"""Fixtures of the core's tests; the shared pieces live in core_toy.py (a unique module name, so that other
test folders' conftest modules cannot shadow them)."""

from core_toy import toy  # noqa: F401  (a fixture)
