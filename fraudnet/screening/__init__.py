"""The daily screening cycle: a drop folder ingested and screened on a schedule, with a run report and notices."""
