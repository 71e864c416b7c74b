"""fraudnet: graph-based fraud network analysis for medical-insurance fund supervision (医保基金监管)."""

__version__ = "0.1.0"
