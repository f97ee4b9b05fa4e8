"""Verify an MRV record against the on-chain registry (the seed's command-line tool).

    python examples/verify_mrv.py <MRV_ID> <JSON_FILE>

Network settings come from the environment as for ``mrv`` (BLOCKCHAIN_RPC_URL,
CONTRACT_ADDRESS, NETWORK, MRV_DATA_DIR). Exit codes are those of ``mrv verify``:
0 VALID, 1 TAMPERED, 2 NOT FOUND, 5 SUBMITTER MISMATCH, 3 unusable file, 4 chain
unreachable, 7 configuration, 9 the record's proof file is needed (it sits beside the
record as <name>.proof.json).
"""

from __future__ import annotations

import sys

from mrv_ml.errors import EXIT_USAGE, MRVError
from mrv_ml.report import verdict_headline, verdict_rows
from mrv_ml.verify import verify


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
