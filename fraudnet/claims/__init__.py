"""The claims store: the embedded DuckDB system of record for rows, leads, cases and audit."""
