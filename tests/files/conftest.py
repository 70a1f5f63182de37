"""Fixtures for files tests: reuse the rooms fixtures (a room with owner/editor/viewer)."""

from tests.rooms.conftest import room

__all__ = ["room"]
