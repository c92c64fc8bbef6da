"""The classes of a public-sector flow (docs/transparency.md): one vocabulary shared by the
proposals that declare a class and the statement that classifies every flow.

- `mining`: a coinbase output paid to a registered wallet (the only way to get it);
- `internal_transfer`: a movement between registered wallets, whatever was declared;
- `fee`: the network fee of a transaction the public sector paid (negative);
- `unattributed`: an inflow or outflow nobody has classified yet (an operator proposes
  a class, an auditor confirms it);
- `purchase`, `sale`, `seizure`, `donation`: declared on an outgoing proposal or
  attributed to any other flow.
"""

from __future__ import annotations

from reserve.errors import WorkflowError

FLOW_CLASSES = ("purchase", "sale", "mining", "seizure", "donation", "internal_transfer",
                "fee", "unattributed")
# What a transfer proposal may declare, and what an attribution may give a flow.
DECLARABLE = ("purchase", "sale", "seizure", "donation", "internal_transfer")
ATTRIBUTABLE = ("purchase", "sale", "seizure", "donation")


def check_declarable(flow_class: str) -> str:
    if flow_class not in DECLARABLE:
        raise WorkflowError(f"flow class {flow_class!r} cannot be declared; expected one of "
                            f"{', '.join(DECLARABLE)}")
    return flow_class
