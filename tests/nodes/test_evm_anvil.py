"""The throwaway anvil launcher: starts on a free port, answers, stops, fails clearly."""

from __future__ import annotations

import pytest

from reserve.errors import NodeUnavailable
from wallets.evm import anvil


def test_start_answer_stop() -> None:
    with anvil.start(chain_id=31337) as node:
        assert node.alive()
        assert anvil.rpc_call(node.url, "eth_chainId") == hex(31337)
    assert not node.alive()
    with pytest.raises(NodeUnavailable, match="did not answer"):
        anvil.rpc_call(node.url, "eth_chainId", timeout=0.5)


def test_bad_arguments_are_reported_not_hung() -> None:
    with pytest.raises(NodeUnavailable, match="anvil exited"):
        anvil.start(extra_args=("--no-such-flag",), timeout=10)


def test_only_http_urls() -> None:
    with pytest.raises(NodeUnavailable, match="not an HTTP"):
        anvil.rpc_call("file:///etc/passwd", "eth_chainId")
