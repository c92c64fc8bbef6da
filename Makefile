# The two commands of the README. Each runs the idempotent set-up first.
.PHONY: setup demo test lint bench

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/reserve demo $(DEMO_ARGS)

test: setup
	bash scripts/test.sh

lint: setup
	.venv/bin/ruff check reserve wallets tests bench
	.venv/bin/mypy reserve wallets
	.venv/bin/lint-imports

bench: setup
	.venv/bin/python bench/ledger.py
