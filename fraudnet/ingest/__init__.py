"""Readers, alias mapping, validation and quarantine: export files into the claims store."""
