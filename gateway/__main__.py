"""`python -m gateway` is the `ketenpoort` command."""

from gateway.cli import main

main()
