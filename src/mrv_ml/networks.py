"""Network presets: chain id, explorer, confirmations, dev flag, fee model.

Anchoring on a public chain needs ``BLOCKCHAIN_RPC_URL`` (or ``--rpc-url``): sending wants
an endpoint the user chose. *Verifying* a proof of a public chain falls back to a
well-known public endpoint of that chain (``public_rpc_url``), so a reviewer needs no
configuration; the chain id the endpoint reports is always checked against the proof's.
Development chains have no default: only the reviewer knows which node holds the chain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from mrv_ml.config import Settings
from mrv_ml.errors import ConfigError

LOCAL = "local"
CUSTOM = "custom"
#: Where ``mrv deploy`` records the registry of each RPC chain, in the data directory.
DEPLOYMENTS_FILE = "deployments.json"
ANVIL_URL = "http://127.0.0.1:8545"


@dataclass(frozen=True)
class Network:
    """One chain the registry can live on."""

    name: str
    chain_id: int | None  # None: taken from the node (custom)
    rpc_url: str | None  # None for `local` (embedded) and for public chains (user sets it)
    explorer_tx_url: str | None  # template with {tx}
    confirmations: int
    is_dev: bool
    eip1559: bool
    public_rpc_url: str | None = None  # read-only default for verifying proofs of this chain

    @property
    def embedded(self) -> bool:
        return self.name == LOCAL

    def explorer_url(self, tx_hash: str) -> str | None:
        return self.explorer_tx_url.format(tx=tx_hash) if self.explorer_tx_url else None


def _public(name: str, chain_id: int, explorer: str, public_rpc: str,
            confirmations: int = 2) -> Network:
    return Network(name, chain_id, None, explorer + "/tx/{tx}", confirmations, False, True,
                   public_rpc)


_DEV_NODE = Network("localhost", 31337, ANVIL_URL, None, 0, True, True)

PRESETS: dict[str, Network] = {
    LOCAL: Network(LOCAL, 1337, None, None, 0, True, True),
    "localhost": _DEV_NODE,
    "anvil": replace(_DEV_NODE, name="anvil"),
    "hardhat": replace(_DEV_NODE, name="hardhat"),
    "mainnet": _public("mainnet", 1, "https://etherscan.io",
                       "https://ethereum-rpc.publicnode.com", 3),
    "sepolia": _public("sepolia", 11155111, "https://sepolia.etherscan.io",
                       "https://ethereum-sepolia-rpc.publicnode.com"),
    "polygon": _public("polygon", 137, "https://polygonscan.com",
                       "https://polygon-bor-rpc.publicnode.com", 3),
    "amoy": _public("amoy", 80002, "https://amoy.polygonscan.com",
                    "https://polygon-amoy-bor-rpc.publicnode.com"),
    "base": _public("base", 8453, "https://basescan.org", "https://mainnet.base.org"),
    "base-sepolia": _public("base-sepolia", 84532, "https://sepolia.basescan.org",
                            "https://sepolia.base.org"),
    "arbitrum": _public("arbitrum", 42161, "https://arbiscan.io", "https://arb1.arbitrum.io/rpc"),
    "arbitrum-sepolia": _public("arbitrum-sepolia", 421614, "https://sepolia.arbiscan.io",
                                "https://sepolia-rollup.arbitrum.io/rpc"),
    "optimism": _public("optimism", 10, "https://optimistic.etherscan.io",
                        "https://mainnet.optimism.io"),
}
#: Chain ids of the public presets: a proof on one of these is publicly checkable.
PUBLIC_CHAIN_IDS = frozenset(n.chain_id for n in PRESETS.values()
                             if not n.is_dev and n.chain_id is not None)
NETWORK_NAMES = (*PRESETS, CUSTOM)


def get_network(name: str) -> Network:
    """The preset called ``name`` (case-insensitive); ConfigError naming the choices."""
    key = name.strip().lower()
    if key == CUSTOM:
        return Network(CUSTOM, None, None, None, 0, False, True)
    try:
        return PRESETS[key]
    except KeyError:
        raise ConfigError(
            f"unknown network {name!r}; choose one of: {', '.join(NETWORK_NAMES)}") from None


def check_for_anchoring(settings: Settings) -> None:
    """What can be checked of the chain's anchoring settings without a node: the network,
    the RPC URL's scheme, and :func:`check_address_and_key`. Run before a training run whose
    record will be anchored, so a typo is a ConfigError then, not after hours."""
    resolve_network(settings)
    check_address_and_key(settings)


def check_address_and_key(settings: Settings) -> None:
    """The registry address's and the private key's shape, if they are set."""
    from mrv_ml.errors import KeyConfigError

    address = settings.contract_address
    if address and not re.fullmatch(r"0x[0-9a-fA-F]{40}", address.strip()):
        raise ConfigError(f"invalid contract address {address[:60]!r}")
    if settings.private_key is not None and not is_key_text(settings.private_key.reveal()):
        raise KeyConfigError("PRIVATE_KEY is not a valid private key "
                             "(expected 32 bytes as 64 hex characters)")


def is_key_text(text: str) -> bool:
    """Exactly 64 hex digits (eth_account would left-pad a short key into another account)."""
    return re.fullmatch(r"(0x)?[0-9a-fA-F]{64}", text.strip()) is not None


def resolve_network(settings: Settings) -> tuple[Network, str | None]:
    """(network, rpc_url) for these settings; rpc_url is None only for the embedded chain.

    An RPC URL with network ``local`` means "a node at that URL" (the seed's
    ``BLOCKCHAIN_RPC_URL`` alone): it becomes ``custom`` with the chain id from the node.
    """
    network = get_network(settings.network)
    if settings.confirmations is not None:
        network = replace(network, confirmations=settings.confirmations)
    if settings.rpc_url and not settings.rpc_url.startswith(("http://", "https://")):
        raise ConfigError(f"RPC URL must start with http:// or https://, "
                          f"not {settings.rpc_url[:40]!r}")
    if network.embedded:
        if settings.rpc_url:
            return replace(get_network(CUSTOM), confirmations=network.confirmations
                           if settings.confirmations is not None else 0), settings.rpc_url
        return network, None
    url = settings.rpc_url or network.rpc_url
    if not url:
        raise ConfigError(f"network {network.name} has no default RPC endpoint; "
                          "set BLOCKCHAIN_RPC_URL (or --rpc-url)")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"RPC URL must start with http:// or https://, not {url[:40]!r}")
    return network, url


#: Addresses of the publicly known development keys (eth-tester's keys 1..10 and anvil's /
#: Hardhat's "test test ... junk" accounts 0-9): anything they sign, anyone could have
#: signed. A test checks this list against the keys themselves (localchain.py).
DEV_ADDRESSES = frozenset(a.lower() for a in (
    "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf", "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF",
    "0x6813Eb9362372EEF6200f3b1dbC3f819671cBA69", "0x1efF47bc3a10a45D4B230B5d10E37751FE6AA718",
    "0xe1AB8145F7E55DC933d51a18c793F901A3A0b276", "0xE57bFE9F44b819898F47BF37E5AF72a0783e1141",
    "0xd41c057fd1c78805AAC12B0A94a405c0461A6FBb", "0xF1F6619B38A98d6De0800F1DefC0a6399eB6d30C",
    "0xF7Edc8FA1eCc32967F827C9043FcAe6ba73afA5c", "0x4CCeBa2d7D2B4fdcE4304d3e09a1fea9fbEb1528",
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65", "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
    "0x976EA74026E726554dB657fA54763abd0C3a0aa9", "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
    "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f", "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"))


def is_dev_address(address: str | None) -> bool:
    """Whether ``address`` belongs to a publicly known development key."""
    return bool(address) and str(address).lower() in DEV_ADDRESSES


def preset_for_chain(chain_id: int) -> Network | None:
    """The preset of a chain id (``anvil`` for 31337, ``local`` for 1337), if any."""
    if chain_id == 31337:
        return PRESETS["anvil"]
    return next((n for n in PRESETS.values() if n.chain_id == chain_id), None)


def resolve_for_proof(settings: Settings, chain_id: int) -> tuple[Network, str | None]:
    """(network, endpoint) to verify a proof anchored on chain ``chain_id``.

    The proof decides the chain; ``BLOCKCHAIN_RPC_URL``/``--rpc-url`` only picks the
    endpoint, and a ``--network`` naming another chain is an error. Without an endpoint:
    the embedded chain for chain 1337 (``None``), the public default for public chains;
    a development or unknown chain needs one. The node's chain id is checked by the caller.
    """
    from mrv_ml.errors import ChainIdMismatchError

    configured = get_network(settings.network)
    chosen = settings.network_chosen or not configured.embedded
    if chosen and configured.chain_id not in (None, chain_id):
        raise ChainIdMismatchError(
            f"the proof says chain {chain_id}, but network {configured.name} is chain "
            f"{configured.chain_id}", key="proof_chain_mismatch")
    preset = preset_for_chain(chain_id)
    network = preset or Network(CUSTOM, chain_id, None, None, 0, False, True)
    if settings.confirmations is not None:
        network = replace(network, confirmations=settings.confirmations)
    if settings.rpc_url:
        if not settings.rpc_url.startswith(("http://", "https://")):
            raise ConfigError(f"RPC URL must start with http:// or https://, "
                              f"not {settings.rpc_url[:40]!r}")
        if network.embedded:  # chain 1337 behind a URL: a node, not this machine's chain
            network = Network(CUSTOM, chain_id, None, None, network.confirmations, True, True)
        return network, settings.rpc_url
    if network.embedded:
        return network, None
    if network.public_rpc_url:
        return network, network.public_rpc_url
    kind = "a development network" if network.is_dev else "a chain without a preset"
    raise ConfigError(f"the proof is anchored on chain {chain_id} ({kind}); give the endpoint "
                      "of a node of that chain with --rpc-url (or BLOCKCHAIN_RPC_URL)",
                      key="endpoint_needed")


#: Well-known public RFC 3161 timestamp authorities, by a short name (``--tsa sigstore``).
#: Contacted only when named; their answers are checked like any other's.
TSA_PRESETS = {
    "sigstore": "https://timestamp.sigstore.dev/api/v1/timestamp",
    "digicert": "http://timestamp.digicert.com",
    "freetsa": "https://freetsa.org/tsr",
}

#: The root certificate shipped for a preset (``src/mrv_ml/data/tsa_roots/<file>``;
#: ``--tsa-root sigstore``), each file saying where it was taken from. FreeTSA's root is in
#: no package this project can take it from: name its file (``--tsa-root ./cacert.pem``).
TSA_BUILTIN_ROOTS = {
    "sigstore": "sigstore.pem",
    "digicert": "digicert.pem",
}
