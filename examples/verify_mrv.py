"""Verify an MRV record against the on-chain registry (the seed's command-line tool).

    python examples/verify_mrv.py <MRV_ID> <JSON_FILE>

The record's proof file (``<name>.proof.json`` beside it) says which chain and registry to
ask; ``BLOCKCHAIN_RPC_URL`` only picks the endpoint (public chains have a default). Nothing
is written. Exit codes are those of ``mrv verify``:
0 VALID, 1 TAMPERED, 2 NOT FOUND, 5 SUBMITTER MISMATCH, 3 unusable file, 4 chain
unreachable, 7 configuration or untrusted evidence, 9 the record's proof file is needed,
11 anchored only on its author's local chain, 12 two readings disagree.
"""

from __future__ import annotations

import sys

from mrv_ml.errors import EXIT_USAGE, MRVError
from mrv_ml.reporting.verdict_text import verdict_headline, verdict_rows
from mrv_ml.verification.verifier import verify


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python examples/verify_mrv.py <MRV_ID> <JSON_FILE>", file=sys.stderr)
        return EXIT_USAGE
    mrv_id, json_file = argv
    try:
        verdict = verify(json_file, mrv_id=mrv_id)
    except MRVError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    print(verdict_headline(verdict))
    for label, value in verdict_rows(verdict, json_file):
        print(f"{label}: {value}")
    return verdict.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
