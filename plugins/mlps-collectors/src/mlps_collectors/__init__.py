"""mlps-collectors: cluster information for every mlps run (/proc parsers, local, MPI and SSH collectors,
time-series sampling, cluster consistency rules). Import-light: nothing here imports mpi4py."""

__version__ = "0.1.0"
