"""``python -m agentdigest``: the command line, for a virtualenv whose scripts folder is not on PATH."""

from .cli import main

main()
