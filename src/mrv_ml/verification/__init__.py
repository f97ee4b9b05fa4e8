"""Deciding whether a record is unchanged and who vouched for it: the pure verdict
(``verdict``), the policies a reviewer pins (``policy``), the reader that gathers the
evidence (``reader``), ``verify()`` over it (``verifier``), the results (``model``), and
in-toto attestations (``attestation``, over ``intoto`` statements in ``dsse`` envelopes)."""
