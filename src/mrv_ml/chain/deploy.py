"""``mrv deploy``: deploy a registry contract and record it as its chain's default (in
``deployments.json``, see :mod:`mrv_ml.chain.deployments`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mrv_ml.chain.connection import connect
from mrv_ml.chain.deployments import write_deployment
from mrv_ml.config import Settings
from mrv_ml.errors import TransactionFailedError


@dataclass(frozen=True)
class Deployment:
    """What ``deploy`` did: the registry's address, where it is recorded, and the address
    of the registry it replaced as this chain's default (kept in the history), if any."""

    address: str
    recorded_in: Path
    replaced: str | None = None


def deploy(settings: Settings) -> Deployment:
    """Deploy a registry and record it as this chain's default."""
    from mrv_ml.chain.contract import load_artifact

    conn = connect(settings, need_signer=True, deploying=True)
    with conn:
        if conn._local is not None:
            from mrv_ml.chain.localchain import LocalChain

            local = LocalChain.for_data_dir(Path(settings.data_dir))
            with conn.session() as w3:
                address = local.registry_address(w3)
            return Deployment(address, local.deployment_path)
        artifact = load_artifact()
        factory = conn.w3.eth.contract(abi=artifact.abi_list, bytecode=artifact.bytecode)
        receipt = conn.send(factory.constructor())
        if not receipt.contract_address:
            raise TransactionFailedError("the deployment created no contract")
        from eth_utils import to_checksum_address

        address = str(to_checksum_address(receipt.contract_address))
        path, replaced = write_deployment(Path(settings.data_dir), conn.chain_id, {
            "address": address, "network": conn.network.name, "tx_hash": receipt.tx_hash,
            "block_number": receipt.block_number, "deployer": conn.signer_address,
            "source_sha256": artifact.source_sha256})
        return Deployment(address, path, replaced)
