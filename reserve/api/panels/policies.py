"""Policies panel: the policy in force for each vault, in plain words, and any freeze."""

from __future__ import annotations

from reserve import present
from reserve.api import reserve_views as views
from reserve.api.panels import PanelContext, PanelView
from reserve.policy import loader
from reserve.present import format_time


def provide(context: PanelContext) -> PanelView | None:
    with views.workflow_access(context.service).reading() as workflow:
        states = [s for name, s in sorted(workflow.projection.vaults.items())
                  if context.principal.may_see_vault(name)]
    if not states:
        return None
    vaults = []
    for state in states:
        freeze = state.freeze
        vaults.append({
            "vault": state.vault, "version": state.policy.version,
            "sha256": loader.policy_sha256(state.policy)[:16],
            "versions": len(state.policy_versions),
            "frozen": f"frozen since {format_time(freeze.since)} by {freeze.by}"
                      f"{f' ({freeze.reason})' if freeze.reason else ''}" if freeze else "",
            "words": present.policy_words(state.policy)})
    return PanelView(summary=f"{len(vaults)} vault policies in force",
                     template="policies.html", data={"vaults": vaults})
