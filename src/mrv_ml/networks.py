"""Network presets: chain id, explorer, confirmations, dev flag, fee model.

Public chains get no default RPC URL: every usable endpoint needs an account or key, so
the user must set ``BLOCKCHAIN_RPC_URL`` (or ``--rpc-url``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mrv_ml.config import Settings
from mrv_ml.errors import ConfigError

LOCAL = "local"
CUSTOM = "custom"
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

    @property
    def embedded(self) -> bool:
        return self.name == LOCAL

    def explorer_url(self, tx_hash: str) -> str | None:
        return self.explorer_tx_url.format(tx=tx_hash) if self.explorer_tx_url else None


def _public(name: str, chain_id: int, explorer: str, confirmations: int = 2) -> Network:
    return Network(name, chain_id, None, explorer + "/tx/{tx}", confirmations, False, True)


_DEV_NODE = Network("localhost", 31337, ANVIL_URL, None, 0, True, True)

PRESETS: dict[str, Network] = {
    LOCAL: Network(LOCAL, 1337, None, None, 0, True, True),
    "localhost": _DEV_NODE,
    "anvil": replace(_DEV_NODE, name="anvil"),
    "hardhat": replace(_DEV_NODE, name="hardhat"),
    "mainnet": _public("mainnet", 1, "https://etherscan.io", 3),
    "sepolia": _public("sepolia", 11155111, "https://sepolia.etherscan.io"),
    "polygon": _public("polygon", 137, "https://polygonscan.com", 3),
    "amoy": _public("amoy", 80002, "https://amoy.polygonscan.com"),
    "base": _public("base", 8453, "https://basescan.org"),
    "base-sepolia": _public("base-sepolia", 84532, "https://sepolia.basescan.org"),
    "arbitrum": _public("arbitrum", 42161, "https://arbiscan.io"),
    "arbitrum-sepolia": _public("arbitrum-sepolia", 421614, "https://sepolia.arbiscan.io"),
    "optimism": _public("optimism", 10, "https://optimistic.etherscan.io"),
}
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


def resolve_network(settings: Settings) -> tuple[Network, str | None]:
    """(network, rpc_url) for these settings; rpc_url is None only for the embedded chain.

    An RPC URL with network ``local`` means "a node at that URL" (the seed's
    ``BLOCKCHAIN_RPC_URL`` alone): it becomes ``custom`` with the chain id from the node.
    """
    network = get_network(settings.network)
    if settings.confirmations is not None:
        network = replace(network, confirmations=settings.confirmations)
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
