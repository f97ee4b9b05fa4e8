"""The EVM side: the registry contract's artifact, the connection (local embedded chain or JSON-RPC), keys and signatures."""
