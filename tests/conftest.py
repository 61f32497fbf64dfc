"""Shared pytest configuration. Fixture plugins live in tests/fixtures/."""

pytest_plugins = ["fixtures.cluster", "fixtures.operator"]
