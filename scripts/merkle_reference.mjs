// Reference trees from @openzeppelin/merkle-tree, for tests/unit/record/test_merkle.py.
// stdin: JSON array of batches, each an array of 0x-prefixed bytes32 values.
// stdout: JSON array, per batch {root, proofs (one per value, in input order), dump}.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const { StandardMerkleTree } = require('@openzeppelin/merkle-tree');

const batches = JSON.parse(readFileSync(0, 'utf8'));
const out = batches.map((values) => {
  const tree = StandardMerkleTree.of(values.map((v) => [v]), ['bytes32']);
  return {
    root: tree.root,
    proofs: values.map((_, i) => tree.getProof(i)),
    dump: tree.dump(),
  };
});
process.stdout.write(JSON.stringify(out));
