"""`reserve demo`: the whole story of the sovereign reserve, told on local testnet nodes.

One function per chapter, in the order a stakeholder would ask about it:

1. custody   -- the national Bitcoin wallet (3-of-5 multisig across five institutions) and
                the reserve's EVM Safe are set up; each custodian's keys sit in their own
                encrypted keystore; the policies are recorded in the ledger.
2. inflows   -- coinbase rewards of blocks mined under the state's power allocation, a
                transfer-in from the seized-assets wallet, and the Safe's funding are
                recorded by the chain watchers.
3. transfers -- a small and a large Bitcoin transfer and an ETH transfer go through
                proposal, approvals (signed with approval keys), time delay (the clock is
                moved, never slept), signing from keystores, broadcast and confirmation.
4. statement -- the public-sector wallets are registered (the national vault held in
                custody, the state miner's payout wallet and the seized-assets wallet only
                watched); the state miner earns a block reward and consolidates half of
                it into the national vault; the auditor's signed statement classifies the
                reward as mining and the consolidation as an internal transfer, and checks
                the state's commitments (no purchases, the stock grows only through mining
                and seizures).
5. reconcile -- an auditor reconciles the ledger with both chains (the Bitcoin vault at a
                pinned block, the Safe's ETH and token at a pinned EVM block) in one
                report, signs it, checks it into the ledger and anchors its hash in
                ReserveRegistry.
6. access    -- a stakeholder's admin token for the dashboard (recorded in the ledger).
7. anchor    -- the ledger is checkpointed, the checkpoint anchored on the EVM chain, and
                the ledger verified end to end.
8. public log -- the ledger is published as a C2SP tile log (static files `reserve serve`
                serves at /public/log/); an outside witness checks it extends nothing
                it saw inconsistently, cosigns it, and the cosignature is recorded and
                published with the checkpoint.

Every chapter uses the project's own services (nothing here moves money by itself) and the
story fails loudly if the ledger and the chains disagree at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from reserve import present
from reserve.api import accounts
from reserve.api.store import AccountStore
from reserve.demo.custody import (
    PASSPHRASE,
    SCRYPT_N_DEMO,
    CustodianKeys,
    approve,
    bitcoin_root,
    create_keystores,
    evm_account,
    require_consistent,
)
from reserve.demo.mining import chapter_mining, public_descriptors
from reserve.demo.stage import Stage
from reserve.demo.summary import amount_words
from reserve.errors import MismatchError, ReconcileError, VerificationError, WorkflowError
from reserve.events.chain_btc import BtcDeposit
from reserve.events.chain_evm import EvmDeposit, EvmSafeTxCreated
from reserve.events.custody import BitcoinVaultRegistered
from reserve.events.records import CheckpointAnchored, ReportAnchored
from reserve.ledger.checkpoint import parse_note
from reserve.ledger.entry import Entry
from reserve.ledger.verify import verify_ledger
from reserve.policy import loader
from reserve.policy.model import Policy
from reserve.present import format_duration
from reserve.reconcile.bitcoin import wallet_range_end
from reserve.reconcile.evm import EVMTarget, anchor_report, token_units, verify_report_anchor
from reserve.reconcile.export import overall_status, write_exports
from reserve.reconcile.report import AuditorSigner, create_auditor_key, load_auditor_key
from reserve.reconcile.run import run_report
from reserve.supervision.attest import attest
from reserve.supervision.keys import create_key
from reserve.transfers.chain import ChainAdapter
from reserve.transfers.package import build_signing_package
from reserve.transfers.service import WorkflowService
from reserve.transparency import witness
from reserve.transparency.publish import publish, record_cosignature
from wallets.bitcoin.adapter import BitcoinAdapter, approved_transfer
from wallets.bitcoin.rpc import btc_to_sats, sats_to_btc
from wallets.bitcoin.vault import Vault, load_vault
from wallets.evm import contracts, deposits
from wallets.evm import testkeys as evm_testkeys
from wallets.evm.adapter import EVMAdapter
from wallets.evm.anchor import anchor_checkpoint, verify_anchors
from wallets.evm.config import EVMVaultConfig, load_vaults
from wallets.evm.demo import TOKEN_SYMBOL, Deployment, deploy_reserve
from wallets.evm.deposits_core import positions
from wallets.evm.vault import balances
from wallets.signer import bitcoin as btc_signer
from wallets.signer import evm as evm_signer
from wallets.signer.package import (
    Enrolment,
    VerifiedPackage,
    check_bitcoin,
    check_evm,
    verify_signing_package,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BTC_POLICY = PROJECT_ROOT / "config" / "policies" / "national-btc.toml"
BTC_VAULT = PROJECT_ROOT / "config" / "vaults" / "reserve-btc-3of5.toml"
EVM_POLICY = PROJECT_ROOT / "config" / "policies" / "reserve-evm.toml"
EVM_VAULTS = PROJECT_ROOT / "config" / "evm" / "vaults.toml"
EVM_VAULT_ID = "reserve-safe"
PROPOSER = "treasury-ops"
AUDITOR = "auditor-general"
SUPERVISOR = "vara-supervisor"  # the policies' [supervision] table names it
STAKEHOLDER = "stakeholder-admin"
TOKEN_SECONDS = 7 * 86400
PROPOSAL_SECONDS = 7 * 86400
BLOCKS_MINED_TO_VAULT = 3
SEIZED_SATS = 250_000_000  # 2.5 BTC transferred in from the seized-assets wallet
SEIZED_WALLET = "seized-assets"
DEPLOYER_GAS_WEI = 1_000 * 10**18
WITNESS_NAME = "witness.lender.example/w1"  # an outside witness, played by the demo
WITNESS_PASSPHRASE = "demo-only-witness-passphrase"  # noqa: S105 - labelled demo secret


@dataclass
class Cast:
    """Who and what the story is about, once custody is set up."""

    btc_policy: Policy
    evm_policy: Policy
    vault: Vault
    btc: BitcoinAdapter
    evm_config: EVMVaultConfig
    deployment: Deployment
    evm: EVMAdapter
    deployer: LocalAccount
    keys: dict[str, CustodianKeys]


@dataclass(frozen=True)
class TransferPlan:
    reference: str
    purpose: str
    asset: str
    amount: int
    destination: str
    approvers: tuple[str, ...]
    signers: tuple[str, ...]


@dataclass
class TransferFact:
    plan: TransferPlan
    vault: str
    label: str
    digest: str = ""
    state: str = ""
    txid: str = ""
    notes: list[str] = field(default_factory=list)


def label_of(policy: Policy, address: str) -> str:
    return next((d.label for d in policy.destinations if d.address.lower() == address.lower()),
                address)


# --------------------------------------------------------------------------- chapter 1
def chapter_custody(stage: Stage) -> Cast:
    """Vaults, policies and each custodian's keystores."""
    btc_policy, evm_policy = loader.load_file(BTC_POLICY), loader.load_file(EVM_POLICY)
    vault = load_vault(BTC_VAULT)
    require_consistent(vault, btc_policy)
    evm_config = load_vaults(EVM_VAULTS)[EVM_VAULT_ID]
    for member in btc_policy.custodians:
        stage.say(f"custodian [bold]{member.id}[/] of the {member.institution}")
    keys = create_keystores(stage.path("keys", "custodians"), btc_policy, vault, evm_config)
    stage.say(f"each custodian's approval, Bitcoin and EVM keys sealed in their own keystore "
              f"under {stage.path('keys', 'custodians')} (TEST keys from public seeds)")
    btc = BitcoinAdapter.connect(vault, stage.ledger, stage.bitcoind.rpc())
    btc.service.ensure_watch_only()
    registered = BitcoinVaultRegistered(
        chain="bitcoin", vault=vault.vault_id, network=vault.network,
        threshold=vault.threshold, descriptor=vault.descriptor(),
        custodians=[{"name": c.name, "institution": c.institution} for c in vault.custodians])
    stage.ledger.append(registered.KIND, "service:btc", registered.to_payload())
    stage.say(f"national Bitcoin wallet [bold]{vault.vault_id}[/]: {vault.threshold}-of-"
              f"{len(vault.custodians)} P2WSH multisig, imported watch-only into bitcoind "
              "(the service holds xpubs only)")
    for policy in (btc_policy, evm_policy):
        stage.workflow.register_policy(policy, "demo:setup")
        stage.say(f"custody policy {policy.vault} v{policy.version} recorded: "
                  + ", ".join(f"{t.name} {_limit(policy, t.amount_min, t.amount_max)} needs "
                              f"{t.rule.approvals_min} approvals"
                              + (f" + {format_duration(t.rule.delay_seconds)} delay"
                                 if t.rule.delay_seconds else "")
                              for t in policy.assets[0].tiers))
    _say_supervision(stage, btc_policy)
    deployer, deployment = _deploy_safe(stage, evm_config, keys)
    evm = EVMAdapter(w3=stage.w3, vault_id=evm_config.id, safe_address=deployment.safe,
                     account=deployer, tokens={TOKEN_SYMBOL: deployment.token}, confirmations=1)
    return Cast(btc_policy, evm_policy, vault, btc, evm_config, deployment, evm, deployer, keys)


def _limit(policy: Policy, amount_min: int, amount_max: int | None) -> str:
    """'up to 0.1 BTC' or, for the open-ended top tier, 'above 5 BTC'."""
    asset = policy.assets[0].asset
    decimals = present.unit_of(asset).decimals
    if amount_max is None:
        return f"above {present.decimal_text(amount_min - 1, decimals)} {asset}"
    return f"up to {present.decimal_text(amount_max, decimals)} {asset}"


def _deploy_safe(stage: Stage, evm_config: EVMVaultConfig,
                 keys: dict[str, CustodianKeys]) -> tuple[LocalAccount, Deployment]:
    deployer = evm_testkeys.deployer_account()
    stage.w3.provider.make_request("anvil_setBalance",  # type: ignore[arg-type]
                                   [deployer.address, hex(DEPLOYER_GAS_WEI)])
    owner_keys = [evm_testkeys.custodian_private_key(o.test_key or 0) for o in evm_config.owners]
    deployment = deploy_reserve(
        stage.w3, deployer, owner_keys=owner_keys, threshold=evm_config.threshold,
        destinations=evm_config.guard.destinations, limits=evm_config.guard.limits,
        token_supply=evm_config.demo.get("token_supply", 10**24))
    stage.ledger.append("vault.registered", "service:evm",
                        {"vault_id": evm_config.id, **deployment.as_json()})
    stage.say(f"reserve Safe [bold]{evm_config.id}[/] {deployment.safe}: "
              f"{deployment.threshold} of {len(deployment.owners)} owners (the same five "
              f"custodians), on-chain guard {deployment.guard}, anchoring registry "
              f"{deployment.registry}, test token {TOKEN_SYMBOL} {deployment.token}")
    if sorted(deployment.owners) != sorted(k.evm_address for k in keys.values()):
        raise MismatchError("Safe owners", sorted(k.evm_address for k in keys.values()),
                            sorted(deployment.owners))
    return deployer, deployment


# --------------------------------------------------------------------------- chapter 2
def chapter_inflows(stage: Stage, cast: Cast) -> None:
    """Coinbase rewards, the seized-assets transfer-in, the Safe's funding: all recorded."""
    node, service = stage.bitcoind, cast.btc.service
    for _ in range(BLOCKS_MINED_TO_VAULT):
        address, index = service.receive_address()
        node.mine(1, address=address)
    stage.say(f"the state's miners, running on its surplus power allocation, mine "
              f"{BLOCKS_MINED_TO_VAULT} blocks whose coinbase rewards pay vault addresses")
    miner = node.miner()  # mines the 100 blocks that make those rewards spendable
    stage.say(f"{node.rpc().getblockcount()} blocks on the chain: the rewards are mature "
              "(spendable after 100 blocks)")
    node.rpc().createwallet(SEIZED_WALLET)
    seized = node.rpc(SEIZED_WALLET)
    # Regtest stand-in: the seized coins come from the miner before they are transferred in.
    miner.sendtoaddress(seized.getnewaddress("", "bech32"), sats_to_btc(SEIZED_SATS + 100_000))
    node.mine(1)
    address, index = service.receive_address()
    txid = seized.sendtoaddress(address, sats_to_btc(SEIZED_SATS))
    node.mine(1)
    stage.say(f"the seized-assets wallet transfers {present.amount_words(SEIZED_SATS, present.BTC)} to vault "
              f"address {address} (receive/{index}): tx {txid}")
    report = cast.btc.watcher.sync()
    recorded = [(entry.seq, BtcDeposit.of(entry))
                for entry in stage.ledger.entries(kinds=["btc.deposit"])]
    for seq, deposit in sorted(recorded, key=lambda item: item[1].height):
        source = "coinbase reward" if deposit.txid != txid else "seized-assets transfer"
        stage.say(f"ledger entry #{seq}: deposit of "
                  f"{present.amount_words(deposit.amount_sats, present.BTC)} ({source}, block "
                  f"{deposit.height})")
    stage.say(f"watcher synced to block {report.tip_height}: ledger balance "
              f"{present.amount_words(cast.btc.watcher.ledger_balance_sats(), present.BTC)}")
    _fund_safe(stage, cast)


def _fund_safe(stage: Stage, cast: Cast) -> None:
    deployment, demo = cast.deployment, cast.evm_config.demo
    contracts.send_ether(stage.w3, cast.deployer, deployment.safe, demo.get("fund_eth", 0))
    token = contracts.at(stage.w3, "ReserveToken", deployment.token)
    contracts.transact(stage.w3, cast.deployer, token.functions.transfer(
        deployment.safe, demo.get("fund_tokens", 0)))
    recorded = _sync_evm(stage, cast)
    for entry in recorded:
        deposit = EvmDeposit.of(entry)
        stage.say(f"ledger entry #{entry.seq}: Safe deposit of "
                  f"{_evm_amount(cast, deposit.asset, deposit.amount_wei)}"
                  f" from the treasury's account (the TEST deployer; block "
                  f"{deposit.block_number})")


def _sync_evm(stage: Stage, cast: Cast) -> list[Any]:
    return deposits.sync(stage.ledger, stage.w3, vault_id=cast.evm_config.id,
                         safe=cast.deployment.safe, tokens=[cast.deployment.token],
                         confirmations=1, from_block=0)


def _asset_name(asset: str) -> str:
    """'ETH', or the demo token's symbol for its contract address."""
    return "ETH" if asset == "ETH" else TOKEN_SYMBOL


def _evm_amount(cast: Cast, asset: str, amount: int) -> str:
    return amount_words(_asset_name(asset), amount)


# --------------------------------------------------------------------------- chapter 3
def propose_and_approve(stage: Stage, cast: Cast, vault: str, policy: Policy,
                        plan: TransferPlan) -> TransferFact:
    """Proposal by treasury operations, then each approver's signed vote, explained."""
    workflow = stage.workflow
    fact = TransferFact(plan, vault, label_of(policy, plan.destination))
    status = workflow.propose_transfer(
        vault=vault, proposer=PROPOSER, asset=plan.asset,
        outputs=[(plan.destination, plan.amount)], fee_max=50_000 if plan.asset == "BTC" else 0,
        purpose=plan.purpose, reference=plan.reference, expires_in_seconds=PROPOSAL_SECONDS)
    fact.digest = status.digest
    stage.say(f"{PROPOSER} (treasury operations desk) proposes "
              f"{_transfer_amount(cast, plan)} to {fact.label} for \"{plan.purpose}\"; "
              f"proposal {status.digest[:16]}")
    stage.say(f"policy says: {workflow.decision(status.digest).explain()}")
    for custodian in plan.approvers:
        keys = cast.keys[custodian]
        decision = workflow.vote(approve(keys, status.proposal))
        stage.say(f"{custodian} ({keys.institution}) signs an approval with its key; "
                  f"policy says: {decision.explain()}")
    return fact


def _transfer_amount(cast: Cast, plan: TransferPlan) -> str:
    return amount_words(plan.asset, plan.amount)


def wait_out_delay(stage: Stage, adapter: ChainAdapter, fact: TransferFact) -> None:
    """The release is refused during the time delay; the story's clock then moves on."""
    workflow: WorkflowService = stage.workflow
    decision = workflow.decision(fact.digest)
    if decision.releasable:
        return
    try:
        workflow.release(fact.digest, adapter, actor=PROPOSER)
    except WorkflowError:
        stage.say(f"{PROPOSER} tries to release it at once: refused by the workflow, "
                  f"{decision.explain()}")
    remaining = int((decision.delay_ends_at - stage.clock()).total_seconds()) + 60 \
        if decision.delay_ends_at else 86400
    stage.clock.advance(remaining)
    stage.say(f"[italic]… {format_duration(remaining)} later (the demo moves its clock instead "
              f"of waiting; story time is now {stage.clock():%Y-%m-%d %H:%M} UTC)[/]")
    workflow.refresh()
    stage.say(f"policy says: {workflow.decision(fact.digest).explain()}")


def _enrolment(stage: Stage, policy: Policy, safe: str = "",
               tokens: tuple[tuple[str, str], ...] = ()) -> Enrolment:
    """What each custodian's device trusts: the ledger's key and the policy it reviewed."""
    signer = stage.ledger.signer
    if signer is None:
        raise WorkflowError("the demo ledger has no checkpoint key")
    return Enrolment(ledger_key=signer.verifier, vault=policy.vault,
                     policy_sha256=loader.policy_sha256(policy), safe_address=safe,
                     tokens=tokens)


def _verified_package(stage: Stage, digest: str, enrolment: Enrolment) -> VerifiedPackage:
    """The release's signing package, as a custodian's device verifies it offline."""
    package = build_signing_package(stage.ledger, digest, now=stage.clock())
    return verify_signing_package(package, enrolment, now=stage.clock())


def bitcoin_transfer(stage: Stage, cast: Cast, plan: TransferPlan) -> TransferFact:
    """Approvals, delay, PSBT, three custodian signatures, broadcast, confirmation."""
    workflow, vault = stage.workflow, cast.vault
    fact = propose_and_approve(stage, cast, vault.vault_id, cast.btc_policy, plan)
    wait_out_delay(stage, cast.btc, fact)
    step = workflow.release(fact.digest, cast.btc, actor=PROPOSER)
    # A recorded step's payload is what the Bitcoin layer hands back, not the ledger entry.
    stage.say(f"released to the Bitcoin layer: PSBT for tx {step.payload['txid']}, fee "
              f"{present.amount_words(int(step.payload['fee_sats']), present.BTC)}")
    verified = _verified_package(stage, fact.digest, _enrolment(stage, cast.btc_policy))
    psbt, _summary = check_bitcoin(verified, vault)
    stage.say(f"signing package: the entries that decided the release, proven against the "
              f"checkpoint of {verified.checkpoint.tree_size} entries signed by the ledger "
              "key; each custodian's device re-runs the policy on them")
    for custodian in plan.signers:
        signed = btc_signer.sign_psbt(psbt.serialize(), vault,
                                      approved_transfer(verified.order),
                                      bitcoin_root(cast.keys[custodian]))
        workflow.add_signature_share(fact.digest, cast.btc, custodian, signed.psbt.to_base64())
        stage.say(f"{custodian} verifies the package offline (checkpoint, proofs, policy, "
                  f"outputs, change, fee) and signs {signed.signatures} input(s) with its own "
                  "key")
    fact.txid = workflow.broadcast(fact.digest, cast.btc, actor=PROPOSER)
    stage.say(f"{vault.threshold} of {len(vault.custodians)} signatures: finalised and "
              f"broadcast as {fact.txid}")
    stage.bitcoind.mine(1)
    depth = workflow.check_confirmation(fact.digest, cast.btc,
                                        confirmations_min=vault.confirmations_min)
    fact.state = workflow.status(fact.digest).state
    stage.say(f"mined: {depth} confirmation(s); the proposal is {fact.state}")
    return fact


def evm_transfer(stage: Stage, cast: Cast, plan: TransferPlan) -> TransferFact:
    """The same workflow for the Safe: EIP-712 signatures from the custodians' keystores."""
    workflow = stage.workflow
    fact = propose_and_approve(stage, cast, cast.evm_config.id, cast.evm_policy, plan)
    wait_out_delay(stage, cast.evm, fact)
    step = workflow.release(fact.digest, cast.evm, actor=PROPOSER)
    created = EvmSafeTxCreated.from_payload(step.payload)
    stage.say(f"released to the EVM layer: Safe transaction {created.safe_tx_hash}, "
              "registered as released on the Safe's guard")
    enrolment = _enrolment(stage, cast.evm_policy, safe=cast.deployment.safe,
                           tokens=((TOKEN_SYMBOL, cast.deployment.token),))
    reviewed = check_evm(_verified_package(stage, fact.digest, enrolment), enrolment)
    for custodian in plan.signers:
        share = evm_signer.sign_reviewed(reviewed, evm_account(cast.keys[custodian]))
        workflow.add_signature_share(fact.digest, cast.evm, share.signer,
                                     "0x" + share.signature.hex())
        stage.say(f"{custodian} reviews the Safe transaction and signs it (EIP-712) as "
                  f"owner {share.signer}")
    fact.txid = workflow.broadcast(fact.digest, cast.evm, actor=PROPOSER)
    stage.say(f"executed through the Safe and its guard: tx {fact.txid}")
    depth = workflow.check_confirmation(fact.digest, cast.evm, confirmations_min=1)
    _sync_evm(stage, cast)
    fact.state = workflow.status(fact.digest).state
    stage.say(f"{depth} confirmation(s); the proposal is {fact.state}")
    return fact


def chapter_transfers(stage: Stage, cast: Cast) -> list[TransferFact]:
    destinations = {d.label: d.address for d in cast.btc_policy.destinations}
    evm_destination = cast.evm_policy.destinations[0].address
    small = TransferPlan("DEMO-BTC-1", "monthly settlement with the state mining operator", "BTC", 5_000_000,
                         destinations["Mining revenue settlement (TEST)"],
                         ("central-bank", "crypto-council"),
                         ("finance-ministry", "central-bank", "auditor-general"))
    large = TransferPlan("DEMO-BTC-2", "move reserve coins into cold storage", "BTC", 150_000_000,
                         destinations["Central bank cold storage (TEST)"],
                         ("finance-ministry", "vasp-regulator", "auditor-general"),
                         ("central-bank", "vasp-regulator", "crypto-council"))
    ether = TransferPlan("DEMO-ETH-1", "settle a treasury obligation", "ETH", 750 * 10**15,
                         evm_destination, ("central-bank", "auditor-general"),
                         ("finance-ministry", "vasp-regulator", "crypto-council"))
    facts = []
    for title, plan, run in (("small Bitcoin transfer (2 approvals, no delay)", small,
                              bitcoin_transfer),
                             ("large Bitcoin transfer (3 approvals, 24 h delay)", large,
                              bitcoin_transfer),
                             ("ETH transfer from the Safe", ether, evm_transfer)):
        stage.console.print(f"  [bold]{title}[/]")
        facts.append(run(stage, cast, plan))
    return facts


def _say_supervision(stage: Stage, policy: Policy) -> None:
    """Who supervises the vault, and the one conflict the policy records with its reason."""
    for line in present.supervision_words(policy):
        stage.say(line)


# --------------------------------------------------------------------------- chapter 5-7
def _auditor(stage: Stage) -> AuditorSigner:
    """The auditor-general's key (made on first use; the statement and the report share it)."""
    path = stage.path("keys", f"{AUDITOR}-auditor.json")
    if path.exists():
        return load_auditor_key(path, PASSPHRASE)
    return create_auditor_key(path, AUDITOR, PASSPHRASE, scrypt_n=SCRYPT_N_DEMO)


def chapter_reconcile(stage: Stage, cast: Cast) -> dict[str, Any]:
    """One signed report over the Bitcoin vault and the Safe; its hash anchored on chain."""
    signer = _auditor(stage)
    scopes = [(cast.vault, wallet_range_end(cast.btc.service.wallet))]
    deployment = cast.deployment
    target = EVMTarget(cast.evm_config.id, deployment.safe, (deployment.token,),
                       deployment.block_number)  # the Safe is funded after it is deployed
    document, entry = run_report(stage.ledger, stage.bitcoind.rpc(), scopes, signer,
                                 actor=f"auditor:{AUDITOR}", now=stage.clock(),
                                 evm=(stage.w3, [target]))
    stem = write_exports(document, stage.path("reports"),
                         token_units(stage.w3, [deployment.token]))
    body = document["report"]
    _say_report_rows(stage, cast, body)
    findings = len(body["findings"]) + len(body["evm"]["findings"])
    stage.say(f"{findings} finding(s); one report signed by {AUDITOR} covers both vaults, "
              f"checked in as ledger entry #{entry.seq}; exports {stem}.json/.csv/.html")
    anchored = _anchor_report(stage, cast, document)
    attested = _attest_report(stage, entry)
    return {"status": overall_status(body), "entry_seq": entry.seq, "files": str(stem),
            "attestation_seq": attested.seq,
            "report_sha256": document["signature"]["report_sha256"],
            "block_height": body["block"]["height"],
            "evm_block_number": body["evm"]["block"]["number"], "findings": findings,
            "auditor_key": signer.verifier.encode(),
            "anchor_tx": ReportAnchored.of(anchored).tx_hash, "anchor_seq": anchored.seq}


def _say_report_rows(stage: Stage, cast: Cast, body: dict[str, Any]) -> None:
    """Each summary row of the signed report, amounts cut from its integers / decimal strings."""
    for row in body["summary"]:
        stage.say(f"{row['vault_id']} {row['asset']}: ledger {present.amount_words(row['ledger'], present.BTC)}, "
                  f"chain {present.amount_words(row['chain'], present.BTC)} at block {body['block']['height']}: "
                  f"[bold]{row['status']}[/]")
    evm_block = body["evm"]["block"]
    for row in body["evm"]["summary"]:
        # Wei are decimal strings in the report (beyond JSON's safe integers); int() is exact.
        stage.say(f"{row['vault_id']} {_asset_name(row['asset'])}: ledger "
                  f"{_evm_amount(cast, row['asset'], int(row['ledger']))}, chain "
                  f"{_evm_amount(cast, row['asset'], int(row['chain']))} at EVM block "
                  f"{evm_block['number']}: [bold]{row['status']}[/]")


def _attest_report(stage: Stage, report: Entry) -> Entry:
    """The regulator's supervisor countersigns the report with its own key (recorded)."""
    key = create_key(stage.path("keys", f"{SUPERVISOR}-supervisor.json"), SUPERVISOR,
                     PASSPHRASE, role="supervisor", scrypt_n=SCRYPT_N_DEMO)
    event = attest(key, report, "re-read the signed report against the ledger it pins")
    attested: Entry = stage.workflow.record_event(event, SUPERVISOR)
    stage.say(f"{SUPERVISOR} (the regulator's supervisor, no key to the vaults) countersigns "
              f"the report with its own key: ledger entry #{attested.seq}")
    return attested


def _anchor_report(stage: Stage, cast: Cast, document: dict[str, Any]) -> Entry:
    """The report's SHA-256 in ReserveRegistry (recorded in the ledger), then checked back."""
    registry = cast.deployment.registry
    anchored = anchor_report(stage.ledger, stage.w3, registry, cast.deployer, document)
    findings = verify_report_anchor(stage.ledger.entries(kinds=["ledger.anchor"]), stage.w3,
                                    registry, document["signature"]["report_sha256"])
    if findings:
        raise VerificationError("the report's anchor does not hold: "
                                + "; ".join(map(str, findings)))
    anchor = ReportAnchored.of(anchored)
    stage.say(f"report hash {anchor.report_sha256[:16]}… anchored in "
              f"ReserveRegistry (index {anchor.index}, tx "
              f"{anchor.tx_hash}), recorded as ledger entry #{anchored.seq}")
    return anchored


def chapter_access(stage: Stage) -> dict[str, Any]:
    """A stakeholder's admin token, issued as `reserve token issue` does (and recorded)."""
    now = stage.clock()
    store = AccountStore.open(stage.ledger.url)
    try:
        def record(items: list[tuple[str, dict[str, Any]]]) -> None:
            stage.ledger.append_many([(kind, "demo:setup", payload) for kind, payload in items],
                                     now=now)

        accounts.create_user(store, record, person=STAKEHOLDER, name="Demo stakeholder",
                             institution="Demo", roles=["admin"], vaults=[], now=now)
        issued, token = accounts.issue_token(
            store, record, person=STAKEHOLDER, role="admin", expires_in_seconds=TOKEN_SECONDS,
            label="reserve demo", issued_by="demo:setup", now=now)
    finally:
        store.close()
    stage.say(f"admin token {token.token_id} issued to {STAKEHOLDER} (expires "
              f"{token.expires_at}); only its id and hash prefix enter the ledger")
    return {"token": issued.token, "token_id": token.token_id, "person": STAKEHOLDER}


def chapter_anchor(stage: Stage, cast: Cast) -> dict[str, Any]:
    ledger = stage.ledger
    checkpoint, _ = parse_note(ledger.checkpoint())
    stage.say(f"signed checkpoint: {checkpoint.tree_size} entries, root "
              f"{checkpoint.root_hash.hex()}")
    anchored = anchor_checkpoint(ledger, stage.w3, cast.deployment.registry, cast.deployer)
    anchor = CheckpointAnchored.of(anchored)
    stage.say(f"anchored in ReserveRegistry {cast.deployment.registry}: tx "
              f"{anchor.tx_hash} (block {anchor.block_number}), "
              f"recorded as ledger entry #{anchored.seq}")
    findings = verify_anchors(ledger, stage.w3, cast.deployment.registry)
    if findings:
        raise VerificationError("anchors do not match the ledger: " + "; ".join(map(str, findings)))
    signer = ledger.signer
    report = verify_ledger(ledger, signer.verifier if signer else None)
    if not report.ok:
        raise VerificationError(f"the ledger does not verify: {report.findings[0].what}",
                                report.first_bad_seq)
    stage.say(f"ledger verified: {report.entries} entries, {report.checkpoints} checkpoints, "
              "hash chain, Merkle tree and signatures all hold; the anchor matches")
    return {"tree_size": checkpoint.tree_size, "root_hash": checkpoint.root_hash.hex(),
            "anchor_tx": anchor.tx_hash, "anchor_seq": anchored.seq,
            "registry": cast.deployment.registry, "verifier_key":
            signer.verifier.encode() if signer else ""}


# --------------------------------------------------------------------------- chapter 8
def chapter_public_log(stage: Stage) -> dict[str, Any]:
    """The ledger as a tile log anyone can mirror, and one witness's cosignature of it."""
    ledger = stage.ledger
    folder = stage.path("public-log")
    note = ledger.checkpoint()
    published = publish(ledger, folder, note)
    stage.say(f"published {published.size} entries as a C2SP tile log in {folder.name}/: "
              f"{published.tiles_written} hash tiles and {published.bundles_written} entry "
              "bundles, served at /public/log/ (Go's x/mod tlog reads it)")
    key = ledger.verifier_key()
    if key is None:
        raise VerificationError("the ledger signed a checkpoint but keeps no verifier key")
    state = stage.path("witness")
    witness_key = witness.init(state, WITNESS_NAME, key.encode(), WITNESS_PASSPHRASE,
                               scrypt_n=SCRYPT_N_DEMO)
    cosigned = witness.cosign(state, str(folder / "checkpoint"), WITNESS_PASSPHRASE,
                              stage.clock())
    entry = record_cosignature(ledger, cosigned.note, witness_key, actor="demo:witness")
    publish(ledger, folder, note)  # the checkpoint again, now carrying the cosignature
    stage.say(f"witness {WITNESS_NAME} rebuilt the root from the tiles and cosigned size "
              f"{cosigned.size} (cosignature/v1); recorded as a witness.cosigned entry and "
              "published with the checkpoint")
    return {"folder": str(folder), "size": published.size, "witness_key": witness_key.encode(),
            "cosigned_size": entry.tree_size, "verifier_key": key.encode()}


# --------------------------------------------------------------------------- chapter 4
# What the state promised its lenders, checked by every statement (docs/transparency.md).
COMMITMENTS = (
    {"id": "no-purchases", "text": "The public sector makes no purchases of bitcoin",
     "rule": "no_flow", "classes": ["purchase"]},
    {"id": "stock", "text": "The public sector's stock grows only through mining and seizures",
     "rule": "stock_grows_only_through", "classes": ["mining", "seizure"]},
)
STATE_MINER_WALLET = "state-miner"


def chapter_statement(stage: Stage, cast: Cast) -> dict[str, Any]:
    """The consolidated public-sector statement: the state miner's payout wallet and the
    seized-assets wallet (watched), the national vault (custody), a consolidation of the
    miner's rewards into the vault that the statement does not read as a purchase."""
    from reserve.reconcile.bitcoin import vault_descriptors
    from reserve.statement import commitments, run
    from reserve.statement.export import write_exports as write_statement
    from reserve.statement.wallets import PublicWallet

    node, rpc = stage.bitcoind, stage.bitcoind.rpc()
    rpc.createwallet(STATE_MINER_WALLET)
    state_miner = node.rpc(STATE_MINER_WALLET)
    network = cast.vault.network
    registry = [
        PublicWallet("national", "Ministry of Finance", "national reserve", "custody",
                     "bitcoin", network, tuple(vault_descriptors(cast.vault))),
        PublicWallet(STATE_MINER_WALLET, "State Power Company", "mining payout", "watched",
                     "bitcoin", network, public_descriptors(state_miner), range_end=100),
        PublicWallet(SEIZED_WALLET, "Office of Seized Assets", "seized assets", "watched",
                     "bitcoin", network, public_descriptors(node.rpc(SEIZED_WALLET)),
                     range_end=100)]
    for wallet in registry:
        run.register_wallet(stage.ledger, rpc, wallet, actor="treasury-ops")
    stage.say(f"{len(registry)} public-sector wallets registered: the national vault (held "
              "in custody) and the state miner's and seized-assets wallets (watched only)")
    start = int(rpc.getblockcount()) + 1
    node.mine(1, address=state_miner.getnewaddress("", "bech32"))
    node.mine(100)  # the reward matures (mined to the outside miner)
    address, _index = cast.btc.service.receive_address()
    reward = btc_to_sats(state_miner.getbalances()["mine"]["trusted"])
    consolidated = reward // 2  # half the reward into the national vault
    txid = state_miner.sendtoaddress(address, sats_to_btc(consolidated))
    node.mine(1)
    cast.btc.watcher.sync()  # the vault's ledger records the consolidation as a deposit
    stage.say(f"the state miner earns one block reward, then consolidates "
              f"{present.amount_words(consolidated, present.BTC)} into the national "
              f"vault (tx {txid}): an explorer would call it a purchase")
    signer = _auditor(stage)
    document, entry = run.publish(stage.ledger, rpc, signer, start_height=start,
                                  end_height=int(rpc.getblockcount()),
                                  commitments=commitments.parse(list(COMMITMENTS)))
    stem = write_statement(document, stage.path("statements"))
    body = document["report"]
    public = body["consolidated"]
    flows = {f["class"]: f["sats"] for f in public["flows"]}
    stage.say(f"statement of blocks {body['blocks']['start_height']}..."
              f"{body['blocks']['end_height']}: public-sector stock "
              f"{present.amount_words(public['opening_sats'], present.BTC)} -> "
              f"{present.amount_words(public['closing_sats'], present.BTC)}; "
              + ", ".join(f"{c} {present.amount_words(v, present.BTC)}" for c, v in flows.items())
              + "; the consolidation is an internal transfer, eliminated")
    for kept in body["commitments"]:
        stage.say(f"commitment '{kept['text']}': "
                  f"{'kept' if kept['kept'] else 'BROKEN: ' + '; '.join(kept['findings'])}")
    stage.say(f"signed by {AUDITOR}, checked in as ledger entry #{entry.seq}; exports "
              f"{stem}.json/.csv/.html")
    if "purchase" in flows or not all(c["kept"] for c in body["commitments"]):
        raise VerificationError("the demo's statement reads a consolidation as a purchase "
                                "or breaks a commitment")
    return {"entry_seq": entry.seq, "files": str(stem), "consolidation_txid": txid,
            "statement_sha256": document["signature"]["report_sha256"],
            "opening_sats": public["opening_sats"], "closing_sats": public["closing_sats"],
            "flows": [{"class": c, "sats": v} for c, v in flows.items()],
            "commitments": [{"id": c["id"], "kept": c["kept"]} for c in body["commitments"]]}


# --------------------------------------------------------------------------- the story
def holdings(stage: Stage, cast: Cast) -> list[dict[str, Any]]:
    """Per vault and asset: the ledger's balance and the chain's, in base units."""
    rows = [{"vault": cast.vault.vault_id, "asset": "BTC",
             "ledger": cast.btc.watcher.ledger_balance_sats(),
             "chain": cast.btc.service.node_balance_sats()}]
    safe, token = cast.deployment.safe, cast.deployment.token
    in_ledger = positions(stage.ledger.entries(kinds=deposits.WATCHED_KINDS), safe,
                          cast.deployment.chain_id)
    on_chain = balances(stage.w3, safe, {"TOKEN": token})
    for asset, name in (("ETH", "ETH"), (token, TOKEN_SYMBOL)):
        rows.append({"vault": cast.evm_config.id, "asset": name,
                     "ledger": in_ledger.get(asset, 0), "chain": on_chain.get(asset, 0)})
    return rows


def require_agreement(rows: list[dict[str, Any]], reconciliation: dict[str, Any]) -> None:
    for row in rows:
        if row["ledger"] != row["chain"]:
            raise MismatchError(f"{row['vault']} {row['asset']} balance (chain vs ledger)",
                                row["chain"], row["ledger"])
    if reconciliation["status"] != "ok":
        raise ReconcileError(f"reconciliation status is {reconciliation['status']}, not ok: "
                             f"see {reconciliation['files']}.html")


def tell(stage: Stage) -> dict[str, Any]:
    """Run every chapter; returns the facts the summary shows (and summary.json holds)."""
    started = time.monotonic()
    chapters = iter(range(1, 10))

    def heading(title: str) -> None:
        stage.console.rule(f"[bold]Chapter {next(chapters)}: {title}", align="left")

    heading("custody: vaults, policies, custodians")
    cast = chapter_custody(stage)
    heading("inflows: mining rewards, seized assets, Safe funding")
    chapter_inflows(stage, cast)
    heading("transfers through approvals, delay, signing, broadcast, confirmation")
    transfers = chapter_transfers(stage, cast)
    heading("the public-sector statement: flows classified, consolidations eliminated")
    public_statement = chapter_statement(stage, cast)
    heading("the 2,000 MW allocation: sites, signed meter readings, mined coins")
    energy = chapter_mining(stage, _auditor(stage), COMMITMENTS, STATE_MINER_WALLET,
                            cast.vault.network)
    heading("reconciliation by the auditor-general")
    reconciliation = chapter_reconcile(stage, cast)
    heading("access for stakeholders")
    access = chapter_access(stage)
    heading("checkpoint, anchor, verify")
    anchor = chapter_anchor(stage, cast)
    heading("a log anyone can mirror: tiles and a witness")
    public_log = chapter_public_log(stage)
    rows = holdings(stage, cast)
    require_agreement(rows, reconciliation)
    return {"holdings": rows, "transfers": [_transfer_json(f) for f in transfers],
            "reconciliation": reconciliation, "access": access, "anchor": anchor,
            "public_log": public_log, "statement": public_statement, "energy": energy,
            "ledger_size": stage.ledger.size(), "story_time_offset_seconds":
            int(stage.clock.offset / timedelta(seconds=1)),
            "duration_seconds": round(time.monotonic() - started, 1)}


def _transfer_json(fact: TransferFact) -> dict[str, Any]:
    return {"reference": fact.plan.reference, "vault": fact.vault, "asset": fact.plan.asset,
            "amount": str(fact.plan.amount), "destination": fact.plan.destination,
            "label": fact.label, "digest": fact.digest, "state": fact.state, "txid": fact.txid}

