"""Chain adapters and key handling: Bitcoin, EVM, and the custodian's offline signer."""
