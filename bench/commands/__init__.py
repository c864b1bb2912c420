"""Subcommands of the CLI: option parsing only; the work is done elsewhere in `bench`."""
