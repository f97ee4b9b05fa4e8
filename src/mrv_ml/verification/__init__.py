"""Deciding whether a record is unchanged and who vouched for it: the pure verdict, the policies a reviewer pins, the reader that gathers the evidence, and in-toto attestations."""
