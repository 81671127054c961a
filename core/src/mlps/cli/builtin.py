"""Built-in commands: ``mlps plugins``, ``mlps version`` (and ``--version``), plus core-2's utility groups."""

from __future__ import annotations

import click

from mlps import __version__


def _state(ctx: click.Context):
    return ctx.obj  # a CliState (or the help cache's stand-in), set by run_cli


def failed_command(name: str, message: str) -> click.Command:
    """A command that exists only to fail with ``message`` (a plugin that failed to load or conflicts)."""
    def callback():
        from mlps.errors import PluginError

        raise PluginError(message, suggestion="run `mlps plugins` for details; reinstall or disable the plugin")
    return click.Command(name, callback=callback, help=f"(unavailable: {message})",
                         context_settings={"ignore_unknown_options": True, "allow_extra_args": True})


class LazyGroup(click.Group):
    """A group whose commands are made only when addressed (``factory(name)``): a help screen that lists the
    groups never pays for the hundreds of options of their commands."""

    def __init__(self, name, names, factory, **kwargs):
        super().__init__(name, **kwargs)
        self._names, self._factory, self._made = sorted(names), factory, {}

    def list_commands(self, ctx):
        return list(self._names)

    def get_command(self, ctx, name):
        if name not in self._made:
            self._made[name] = self._factory(name) if name in self._names else None
        return self._made[name]


class RootGroup(click.Group):
    """The ``mlps`` group. ``failed_lookup(name)`` returns the load error of a failed plugin that provides
    ``name``, so its commands still resolve, to fail with that error instead of "No such command"."""

    def __init__(self, *args, failed_lookup=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.failed_lookup = failed_lookup or (lambda name: None)

    def get_command(self, ctx, cmd_name):
        command = super().get_command(ctx, cmd_name)
        if command is None:
            message = self.failed_lookup(cmd_name)
            if message:
                return failed_command(cmd_name, message)
        return command


def make_root(failed_lookup=None) -> RootGroup:
    """The root group with its own options and the built-in commands; benchmarks are added by the caller."""
    root = RootGroup("mlps", failed_lookup=failed_lookup, help="mlps: the MLPerf Storage benchmark suite.",
                     no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})
    root.params.append(click.Option(["--version"], is_flag=True, expose_value=False, is_eager=True,
                                    callback=print_version, help="Show core and plugin versions."))
    root.params.append(click.Option(["--debug"], is_flag=True, expose_value=False,
                                    help="Full tracebacks and debug logging."))
    add_builtin_commands(root)
    return root


def version_lines(manager) -> list[str]:
    lines = [f"mlps-core {__version__}"]
    for record in sorted(manager.records.values(), key=lambda r: r.name):
        who = record.distribution or record.name
        status = "" if record.status == "active" else f" ({record.status})"
        lines.append(f"{who} {record.version or 'unknown'}{status}")
    return lines


def print_version(ctx: click.Context, _param, value) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo("\n".join(version_lines(_state(ctx).manager)))
    ctx.exit(0)


@click.command("version", help="Show the versions of mlps-core and of every plugin.")
@click.pass_context
def version_command(ctx: click.Context) -> None:
    click.echo("\n".join(version_lines(_state(ctx).manager)))


@click.command("plugins", help="List plugins: name, distribution, version, hooks and status.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def plugins_command(ctx: click.Context, as_json: bool) -> None:
    import json

    records = sorted(_state(ctx).manager.records.values(), key=lambda r: r.name)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in records], indent=2))
        return
    if not records:
        click.echo("no plugins installed (pip install mlps-training, mlps-kvcache, ...)")
        return
    for record in records:
        click.echo(f"{record.name}  {record.distribution or '-'} {record.version or '-'}  [{record.status}]")
        if record.benchmarks:
            click.echo(f"    benchmarks: {', '.join(record.benchmarks)}")
        if record.hooks:
            click.echo(f"    hooks: {', '.join(record.hooks)}")
        if record.error:
            click.echo(f"    reason: {record.error}")


def add_builtin_commands(root: click.Group) -> None:
    root.add_command(version_command)
    root.add_command(plugins_command)
    try:
        from mlps.cli.utility_commands import add_utility_commands
    except ImportError:  # reports/history/lockfile arrive with core-2
        return
    add_utility_commands(root)
