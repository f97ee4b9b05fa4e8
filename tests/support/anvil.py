"""pytest plugin: fixtures for anvil tests (see docs/ARCHITECTURE.md)."""
