"""Shared pytest set-up: fixtures live in tests/fixtures/, one module per area."""

pytest_plugins = [
    "tests.fixtures.city",
    "tests.fixtures.claims",
    "tests.fixtures.neo4j",
    "tests.fixtures.server",
    "tests.fixtures.browser",
]
