"""`reserve ledger verify` shows a progress bar only where one is drawn (a terminal, not
--json); elsewhere it passes no row wrapper, so the verifier reads the store's chunks a
chunk ahead. With a wrapper or without, the verdict and the entries seen are the same."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reserve.cli.common import progress_rows
from reserve.ledger import CheckpointSigner, Ledger
from reserve.ledger.verify import verify_ledger


def test_no_wrapper_where_no_bar_is_drawn() -> None:
    assert progress_rows("verifying ledger", enabled=False) is None  # --json
    assert progress_rows("verifying ledger", enabled=True) is None  # stderr is no terminal


def test_a_wrapped_row_stream_and_the_chunks_read_ahead_agree() -> None:
    signer = CheckpointSigner("test.reserve.example/ledger", Ed25519PrivateKey.generate())
    with Ledger.open("sqlite:///:memory:", signer=signer, checkpoint_every=1_000) as ledger:
        ledger.append_many([("ledger.note", "tester", {"i": i}) for i in range(4_500)])
        seen: list[int] = []

        def counting(rows: Iterable[tuple[int, bytes, bytes]], total: int
                     ) -> Iterator[tuple[int, bytes, bytes]]:
            assert total == 4_500
            for row in rows:
                seen.append(row[0])
                yield row

        wrapped = verify_ledger(ledger, signer.verifier, progress=counting)
        plain = verify_ledger(ledger, signer.verifier)
        assert seen == list(range(4_500))
        assert wrapped.ok and plain.ok
        assert (wrapped.entries, wrapped.findings) == (plain.entries, plain.findings)
