"""Detectors: one module per method, each returning explained Leads."""
