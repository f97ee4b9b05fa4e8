"""pytest plugin: fixtures for browser tests (see docs/ARCHITECTURE.md)."""
