"""The electricity allocation: its sites and the meter operators' signed energy readings
(docs/mining.md). Pure: the CLI and the API record what these modules admit."""
