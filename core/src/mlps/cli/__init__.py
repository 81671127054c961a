"""The ``mlps`` command line: :func:`mlps.cli.main.main` is the console script."""
