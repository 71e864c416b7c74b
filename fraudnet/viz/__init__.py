"""Browser link chart and lead pages (built assets served by the API), chart exports."""
