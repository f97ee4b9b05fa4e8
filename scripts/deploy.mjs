#!/usr/bin/env node
// Deploys MRVRegistry from the committed artifact with ethers v6 — the Node.js
// counterpart of `mrv deploy`, for teams whose deployment tooling is JavaScript.
//
//   BLOCKCHAIN_RPC_URL=http://127.0.0.1:8545 PRIVATE_KEY=0x... node scripts/deploy.mjs
//
// Prints one JSON line: {"address", "chainId", "txHash", "gasUsed", "sourceSha256"}.
// The key is read from the environment only and never printed.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ContractFactory, JsonRpcProvider, Wallet } from "ethers";

const here = dirname(fileURLToPath(import.meta.url));
const artifactPath = join(here, "..", "src", "mrv_ml", "contracts", "MRVRegistry.json");

function fail(message, code) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(code);
}

const url = process.env.BLOCKCHAIN_RPC_URL;
const key = process.env.PRIVATE_KEY;
if (!url) fail("set BLOCKCHAIN_RPC_URL to the node's JSON-RPC URL", 7);
if (!key) fail("set PRIVATE_KEY to the deployer's key", 7);

let artifact;
try {
  artifact = JSON.parse(readFileSync(artifactPath, "utf8"));
} catch (e) {
  fail(`cannot read the contract artifact ${artifactPath}: ${e.message}`, 3);
}

let wallet;
try {
  wallet = new Wallet(key);
} catch {
  fail("PRIVATE_KEY is not a valid private key", 7);
}

const provider = new JsonRpcProvider(url, undefined, { staticNetwork: true });
let network;
try {
  network = await provider.getNetwork();
} catch (e) {
  fail(`cannot reach ${url}: ${e.shortMessage ?? e.message}`, 4);
}

try {
  const factory = new ContractFactory(artifact.abi, artifact.bytecode, wallet.connect(provider));
  const contract = await factory.deploy();
  const receipt = await contract.deploymentTransaction().wait();
  process.stdout.write(JSON.stringify({
    address: await contract.getAddress(),
    chainId: Number(network.chainId),
    txHash: receipt.hash,
    gasUsed: Number(receipt.gasUsed),
    sourceSha256: artifact.sourceSha256,
  }) + "\n");
} catch (e) {
  fail(`deployment failed: ${e.shortMessage ?? e.message}`, 8);
} finally {
  provider.destroy();
}
