"""Helpers shared by the unit and integration tests (real ffmpeg clips, AWS fixtures)."""
