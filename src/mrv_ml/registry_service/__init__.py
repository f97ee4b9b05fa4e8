"""The registry service (``mrv registry serve``): many researchers submit record fingerprints
over HTTP, the service anchors them every interval as the leaves of one Merkle tree (one
``anchorBatch`` transaction signed by the operator), and researchers fetch their proofs later.

- :mod:`mrv_ml.registry_service.db`: the storage underneath (SQLite or PostgreSQL, shared by every
  thread and process of the service); its schema lives in the Alembic migrations under
  ``migrations/``, applied when the database is opened.

Needs the ``registry`` extra (``pip install 'mrv-ml[registry]'``); the core package never
imports it.
"""
