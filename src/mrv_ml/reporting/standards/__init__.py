"""The record in the reporting standards auditors and regulators read: one mapping module
per format (``boamps``, ``cyclonedx``, ``spdx_ai``, ``sci``, ``ai_act``), each from the one
reading of a record in :mod:`mrv_ml.reporting.standards.evidence`, each carrying the MRV ID
and the fingerprint ``mrv verify`` checks, and where it is anchored."""
