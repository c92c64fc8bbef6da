"""`reserve demo`: the reserve's whole story told on local testnet nodes (see story.py)."""
