#!/usr/bin/env node
// Compiles contracts/MRVRegistry.sol with the pinned npm solc (solc-js, no compiler
// download) and writes src/mrv_ml/contracts/MRVRegistry.json deterministically.
//
//   node scripts/compile_contract.mjs           # regenerate the artifact
//   node scripts/compile_contract.mjs --check   # exit 1 if the committed artifact differs
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SOURCE = "contracts/MRVRegistry.sol";
const CONTRACT = "MRVRegistry";
const ARTIFACT = path.join(REPO, "src/mrv_ml/contracts/MRVRegistry.json");
const PINNED_SOLC = "0.8.30";
// cancun: PUSH0/MCOPY available, and both py-evm (eth-tester's Prague default) and anvil run it.
const SETTINGS = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 200 },
  // No metadata hash: the bytecode then depends only on source and settings.
  metadata: { bytecodeHash: "none" },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

const sha256 = (text) => createHash("sha256").update(text).digest("hex");
const usedSources = {};

function readSource(relPath) {
  const text = readFileSync(path.join(REPO, relPath), "utf8");
  usedSources[relPath] = sha256(text);
  return text;
}

// Import callback: @openzeppelin/... resolves inside node_modules; nothing is downloaded.
function findImports(importPath) {
  const rel = importPath.startsWith("@") ? path.join("node_modules", importPath) : importPath;
  if (!existsSync(path.join(REPO, rel))) return { error: `import not found: ${importPath}` };
  return { contents: readSource(rel) };
}

// Sorted keys at every level so the JSON is byte-stable.
function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys(value[k])]));
  }
  return value;
}

function compile() {
  const version = solc.version();
  if (!version.startsWith(`${PINNED_SOLC}+`)) {
    throw new Error(`solc ${version} installed, ${PINNED_SOLC} pinned: run npm ci`);
  }
  const input = { language: "Solidity", sources: { [SOURCE]: { content: readSource(SOURCE) } }, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  for (const e of output.errors || []) process.stderr.write(`${e.formattedMessage}\n`);
  if (errors.length > 0) throw new Error(`${errors.length} compile error(s)`);
  const c = output.contracts[SOURCE][CONTRACT];
  const artifact = {
    contractName: CONTRACT,
    abi: c.abi,
    bytecode: `0x${c.evm.bytecode.object}`,
    deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
    compiler: { name: "solc", version, settings: { evmVersion: SETTINGS.evmVersion, optimizer: SETTINGS.optimizer, metadata: SETTINGS.metadata } },
    sourcePath: SOURCE,
    sourceSha256: usedSources[SOURCE],
    sources: usedSources,
  };
  return `${JSON.stringify(sortKeys(artifact), null, 2)}\n`;
}

function main() {
  const check = process.argv.includes("--check");
  let text;
  try {
    text = compile();
  } catch (e) {
    process.stderr.write(`compile_contract: ${e.message}\n`);
    process.exit(2);
  }
  const rel = path.relative(REPO, ARTIFACT);
  if (check) {
    const committed = existsSync(ARTIFACT) ? readFileSync(ARTIFACT, "utf8") : "";
    if (committed !== text) {
      process.stderr.write(`${rel} differs from ${SOURCE}: run node scripts/compile_contract.mjs\n`);
      process.exit(1);
    }
    process.stdout.write(`${rel} matches ${SOURCE}\n`);
    return;
  }
  writeFileSync(ARTIFACT, text);
  process.stdout.write(`wrote ${rel}\n`);
}

main();
