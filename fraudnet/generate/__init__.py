"""Synthetic city generator with planted fraud schemes and legitimate look-alikes."""
