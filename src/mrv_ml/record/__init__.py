"""One record: its fingerprint (RFC 8785 + SHA-256), its JSON Schema, strict JSON reader and repair, its proof sidecar and what that proof is worth. Below everything but the base modules."""
