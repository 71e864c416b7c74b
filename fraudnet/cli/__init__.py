"""The `fraudnet` command line: one group, one module per command family under `fraudnet/cli/`."""

from __future__ import annotations

import importlib
import logging
import pkgutil

import click

from fraudnet import __version__

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fraudnet")
@click.option("--workspace", "-w", envvar="FRAUDNET_WORKSPACE", default="fraudnet-data", show_default=True,
              type=click.Path(file_okay=False), help="Workspace folder (claims store, Neo4j data, exports).")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.option("--wait", "lock_wait", type=click.FloatRange(min=0), envvar="FRAUDNET_LOCK_WAIT", default=None,
              help="Seconds to wait for the claims store while another process (fraudnet serve) writes it "
                   "[default: FRAUDNET_LOCK_WAIT, else 0: fail at once, naming that process].")
@click.pass_context
def main(ctx: click.Context, workspace: str, verbose: bool, lock_wait: float | None) -> None:
    """fraudnet — graph-based fraud network analysis for medical-insurance fund supervision (医保基金监管)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if lock_wait is not None:
        import os

        os.environ["FRAUDNET_LOCK_WAIT"] = f"{lock_wait:g}"  # read by `ClaimsStore.open`
    ctx.ensure_object(dict)
    ctx.obj["workspace"] = workspace


def _register_commands() -> None:
    """Import every `fraudnet.cli.<module>` and add the click commands it exports in `COMMANDS`."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            main.add_command(command)


_register_commands()
