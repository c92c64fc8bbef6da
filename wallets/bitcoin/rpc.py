"""A small bitcoind JSON-RPC client: the only place this project talks to a Bitcoin node.

Amounts cross this boundary exactly: JSON numbers are parsed as Decimal (never float) and
converted to integer satoshis with `btc_to_sats`, which refuses sub-satoshi values; amounts
sent to the node are decimal strings, which bitcoind accepts. A node that cannot be reached
raises `NodeUnavailable` after a bounded number of retries so a flow can stop cleanly and
resume later; a node that answers with an error raises `NodeRPCError` with its code.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from reserve.errors import NodeRPCError, NodeUnavailable, WalletError

SATS_PER_BTC = 100_000_000
RESPONSE_BYTES_MAX = 256 * 1024 * 1024
# bitcoind answers -28 while it is still loading blocks or wallets: worth retrying.
RPC_IN_WARMUP = -28


def btc_to_sats(value: Decimal | int | str) -> int:
    """Exact BTC -> satoshi conversion; refuses floats and sub-satoshi amounts."""
    if isinstance(value, float):
        raise WalletError(f"refusing float amount {value!r}: amounts must be exact")
    sats = Decimal(value) * SATS_PER_BTC
    if sats != sats.to_integral_value():
        raise WalletError(f"amount {value} BTC is not a whole number of satoshis")
    return int(sats)


def sats_to_btc(sats: int) -> str:
    """Satoshis as the decimal string bitcoind accepts for an amount."""
    if not isinstance(sats, int) or isinstance(sats, bool):
        raise WalletError(f"amount must be integer satoshis, got {sats!r}")
    sign = "-" if sats < 0 else ""
    whole, fraction = divmod(abs(sats), SATS_PER_BTC)
    return f"{sign}{whole}.{fraction:08d}"


@dataclass(frozen=True)
class BitcoinRPC:
    """JSON-RPC client. Requires retries >= 0 and timeout_seconds > 0."""

    url: str
    user: str
    password: str
    wallet: str | None = None
    timeout_seconds: float = 30.0
    retries: int = 3
    retry_delay_seconds: float = 0.5

    def for_wallet(self, wallet: str | None) -> BitcoinRPC:
        return replace(self, wallet=wallet)

    def with_retries(self, retries: int) -> BitcoinRPC:
        return replace(self, retries=retries)

    def _endpoint(self) -> str:
        base = self.url.rstrip("/")
        return f"{base}/wallet/{quote(self.wallet, safe='')}" if self.wallet is not None \
            else base

    def _request(self, method: str, params: list[Any]) -> urllib.request.Request:
        body = json.dumps({"jsonrpc": "1.0", "id": "reserve", "method": method,
                           "params": params}).encode()
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if not self.url.startswith(("http://", "https://")):
            raise WalletError(f"bitcoind RPC URL must be http(s): {self.url!r}")
        return urllib.request.Request(self._endpoint(), data=body, method="POST", headers={  # noqa: S310
            "Content-Type": "application/json", "Authorization": f"Basic {token}"})

    def _once(self, method: str, params: list[Any]) -> dict[str, Any]:
        request = self._request(method, params)
        try:
            with urllib.request.urlopen(request,  # noqa: S310 (scheme checked above)
                                        timeout=self.timeout_seconds) as response:
                raw = response.read(RESPONSE_BYTES_MAX)
        except urllib.error.HTTPError as error:
            if error.code == 401:
                raise WalletError(f"bitcoind at {self.url} refused the RPC credentials") \
                    from None
            raw = error.read(RESPONSE_BYTES_MAX)
            if not raw:
                raise NodeUnavailable(f"bitcoind at {self.url}: HTTP {error.code}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as error:
            raise NodeUnavailable(f"bitcoind at {self.url} is not reachable: {error}") \
                from None
        try:
            answer: dict[str, Any] = json.loads(raw, parse_float=Decimal)
        except json.JSONDecodeError:
            raise NodeUnavailable(f"bitcoind at {self.url} sent a non-JSON answer") from None
        return answer

    def call(self, method: str, *params: Any) -> Any:
        """Call `method`; retries up to `retries` times while the node is unreachable."""
        last: NodeUnavailable | None = None
        for attempt in itertools.count():
            if attempt > self.retries:
                break
            if attempt:
                time.sleep(self.retry_delay_seconds * attempt)
            try:
                answer = self._once(method, list(params))
            except NodeUnavailable as error:
                last = error
                continue
            error_obj = answer.get("error")
            if error_obj:
                code, message = int(error_obj.get("code", 0)), str(error_obj.get("message"))
                if code == RPC_IN_WARMUP:
                    last = NodeUnavailable(f"bitcoind at {self.url} is warming up: {message}")
                    continue
                raise NodeRPCError(method, code, message)
            return answer.get("result")
        assert last is not None
        raise NodeUnavailable(f"{last} (after {self.retries + 1} attempts)")

    def __getattr__(self, name: str) -> Any:
        # rpc.getblockcount() reads like bitcoin-cli; private names stay errors.
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *params: self.call(name, *params)
