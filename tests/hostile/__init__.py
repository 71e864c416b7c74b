"""Hostile and malformed input: one test per case fraudnet handles (bad files, injection, tampering, bypasses)."""
