"""``mrv serve``: the local dashboard and its read-only API."""
