"""Built-in commands: ``mlps plugins``, ``mlps version`` (and ``--version``), plus core-2's utility groups."""

from __future__ import annotations

import json

import click

from mlps import __version__


def _state(ctx: click.Context):
    from mlps.cli.build import CliState

    return ctx.find_object(CliState)


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
