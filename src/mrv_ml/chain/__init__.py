"""The EVM side: the registry contract's artifact, the connection (local embedded chain or JSON-RPC), deploying a registry, event scans, keys and signatures."""
