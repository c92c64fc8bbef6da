"""The consolidated public-sector statement (docs/transparency.md): the wallets it covers,
the class of every flow, and the signed statement of opening stock, flows and closing
stock, per wallet and consolidated."""
