"""``python -m carkinetics`` runs the command line."""

from carkinetics.cli import main

main()
