"""``python -m mlps`` is the ``mlps`` command."""

from mlps.cli.main import main

main()
