"""Putting a record's fingerprint on a chain: one registration, a Merkle batch, or through a registry service; ``publish`` is the one place that picks the route."""
