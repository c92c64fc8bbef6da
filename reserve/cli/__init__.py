"""The `reserve` command line: one sub-command group per flow."""
