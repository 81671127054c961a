"""The hooks of mlps: the only seams between the core and its plugins.

Every hook is prefixed ``mlps_``. A plugin implements any subset by defining module-level functions marked
with ``mlps.hookimpl``; an implementation may accept fewer arguments than the spec lists (pluggy passes only
the ones it names). Hooks are grouped by phase:

1. Registration and CLI arguments: ``mlps_register_benchmarks``, ``mlps_command_options``.
2. Command generation (owner hooks): ``mlps_prepare_run``, ``mlps_build_commands``.
3. Run lifecycle and results: ``mlps_requirements``, ``mlps_before_run``, ``mlps_parse_results``,
   ``mlps_after_run``.
4. Collectors: ``mlps_collect_cluster_info``, ``mlps_timeseries_start``, ``mlps_timeseries_stop``.
5. Rules and reports: ``mlps_run_checkers``, ``mlps_submission_checkers``, ``mlps_headline_metrics``.

**Owner hooks** are called only on the plugin that registered the run's benchmark, so one plugin can never
answer for another's benchmark. All other hooks are broadcast to every active plugin; implementations look
at ``run.benchmark`` (or the ``benchmark`` argument) when they care which benchmark is running.

A hook that finds a problem the user can fix raises :class:`mlps.errors.MlpsError` (usually
``ConfigurationError``); the CLI renders it as one line with a hint. Any other exception is a bug and is
reported as one (traceback under ``--debug``).

The run lifecycle, in order, for each loop of ``mlps <benchmark> <command>``::

    mlps_prepare_run (owner) -> rules gate (mlps_run_checkers) -> mlps_requirements check
    -> results directory created -> mlps_build_commands (owner)
    -> [what-if: print the steps, write metadata, stop]
    -> mlps_collect_cluster_info(phase="start") -> mlps_timeseries_start -> mlps_before_run
    -> steps executed -> mlps_parse_results (owner, on success)
    -> mlps_after_run -> mlps_timeseries_stop -> mlps_collect_cluster_info(phase="end")
    -> metadata written (always)
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("mlps")

OWNER_HOOKS = frozenset({"mlps_prepare_run", "mlps_build_commands", "mlps_parse_results"})


# --- 1. Registration and CLI arguments ------------------------------------------------------------------

@hookspec
def mlps_register_benchmarks(register):
    """Declare the benchmarks this plugin provides.

    :param register: call ``register(mlps.Benchmark(...))`` once per benchmark. The core checks each record,
        remembers which plugin gave it, and refuses a name that another plugin registered too (invoking it then
        fails with an error naming both plugins).
    :returns: nothing.

    Called once per process while the CLI is built, before any command runs. Keep it cheap: no heavy imports.
    """


@hookspec
def mlps_command_options(benchmark, command):
    """Add options to a command, including commands that other plugins own.

    :param str benchmark: the benchmark name (``"training"``...).
    :param str command: the command name (``"run"``...).
    :returns: a list of :class:`mlps.Option`, or None. A dest that clashes with one already on the command is
        refused as a plugin error.

    Called while the CLI is built, once per (benchmark, command). Collectors use it to add their flags to every
    ``run``.
    """


# --- 2. Command generation (owner hooks) ---------------------------------------------------------------

@hookspec
def mlps_prepare_run(run):
    """Resolve a run before anything is executed or gated (owner hook).

    :param mlps.Run run: options, params, hosts and mode are set. Set ``run.model``, ``run.accelerator``,
        ``run.num_processes``, ``run.parameters`` (nested) and ``run.override_parameters`` (flat dotted keys);
        raise :class:`mlps.errors.ConfigurationError` for bad combinations.
    :returns: nothing.

    Called once per loop, before the results directory exists; must not write anything.
    """


@hookspec(firstresult=True)
def mlps_build_commands(run):
    """Return what the run executes (owner hook).

    :param mlps.Run run: prepared; ``run.run_dir`` exists (also under ``--what-if``).
    :returns: a list of :class:`mlps.Step` (possibly empty). Launch MPI programs with ``run.mpi_prefix()`` so
        every plugin shares the core's launch line. ``--what-if`` prints exactly these steps and runs nothing.

    Must not create or change anything outside ``run.run_dir``.
    """


# --- 3. Run lifecycle and results ---------------------------------------------------------------------

@hookspec
def mlps_requirements(run):
    """Declare what the run needs, for the fail-fast environment check (skipped by ``--skip-validation``).

    :param mlps.Run run: prepared.
    :returns: a list of :class:`mlps.Requirement`, or None. The core checks them all and reports every problem
        at once, each with an install hint for the detected OS.
    """


@hookspec
def mlps_before_run(run):
    """Called right before the steps execute (not under ``--what-if``).

    :param mlps.Run run: the results directory exists; start snapshots have been taken.
    """


@hookspec(firstresult=True)
def mlps_parse_results(run):
    """Turn the files a successful run left behind into metrics (owner hook).

    :param mlps.Run run: every step exited 0.
    :returns: a dict of metrics (JSON-native values) stored as ``metrics`` in the metadata, or None. Raise
        :class:`mlps.errors.ExecutionError` when the output shows the run did not really work (for example zero
        training steps); the run is then recorded as failed with that reason.
    """


@hookspec
def mlps_after_run(run, exit_status):
    """Called after the steps, whatever the outcome (failure, exception, Ctrl-C); not under ``--what-if``.

    :param mlps.Run run: the run.
    :param str exit_status: ``"success"``, ``"failed"`` or ``"interrupted"``.

    Must not raise: an exception is logged and ignored so the metadata is still written.
    """


# --- 4. Collectors -------------------------------------------------------------------------------------

@hookspec(firstresult=True)
def mlps_collect_cluster_info(run, phase):
    """Collect cluster information (hosts, memory, CPUs, disks, OS).

    :param mlps.Run run: the run; its hosts and options (the collectors' own flags too).
    :param str phase: ``"start"`` (before the benchmark) or ``"end"`` (after it).
    :returns: a JSON-native dict, or None when this plugin does not collect. The first answer is kept: the
        core stores it in ``cluster_snapshots[phase]``, uses the start snapshot as ``system_info`` and writes both
        to ``<benchmark>_cluster_info.json``. A dict key ``collection_method`` is recorded in the metadata.
    """


@hookspec
def mlps_timeseries_start(run):
    """Start sampling host statistics in the background for the duration of the run."""


@hookspec(firstresult=True)
def mlps_timeseries_stop(run):
    """Stop the sampler started by ``mlps_timeseries_start`` and write its file into ``run.run_dir``.

    :returns: a dict for the metadata's ``timeseries_data`` (``file``, ``num_samples``, ``interval_seconds``,
        ``hosts_collected``), or None.
    """


# --- 5. Rules and reports ------------------------------------------------------------------------------

@hookspec
def mlps_run_checkers(benchmark):
    """Contribute run-level rule checkers.

    :param str benchmark: the benchmark type being graded (``run.benchmark_type``; ``"training"``...).
    :returns: a list of :class:`mlps.rules.RunChecker` subclasses (or instances), or None. Each checker is built
        with the run's metadata dict and its ``check_*`` methods yield :class:`mlps.rules.Issue` records.
    """


@hookspec
def mlps_submission_checkers(benchmark):
    """Contribute submission-level checkers, which grade a group of runs of one workload together.

    :param str benchmark: the benchmark type being graded.
    :returns: a list of :class:`mlps.rules.SubmissionChecker` subclasses (or instances), or None.
    """


@hookspec(firstresult=True)
def mlps_headline_metrics(benchmark, metadata):
    """Pick the few metrics a report shows for one run.

    :param str benchmark: the benchmark type.
    :param dict metadata: the run's metadata as loaded from disk.
    :returns: an ordered dict of ``{label: value}``, or None to let another plugin (or the default) answer.
    """
