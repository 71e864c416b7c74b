"""FastAPI service: thin routers over the library."""
