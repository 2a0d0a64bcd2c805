"""`python -m erx` is the `erx` command."""

from erx.cli import app

app()
