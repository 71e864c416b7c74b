"""Exports: leads (CSV/XLSX/JSONL with the contract's columns) and entity risk scores."""
