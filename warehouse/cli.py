"""The ``crmwh`` command line: one entry point with a subcommand per step.

Each step's command lives beside its code and is registered here by module name; the modules
import their heavy dependencies inside the command, so ``crmwh --help`` stays fast.
"""

from __future__ import annotations

import importlib

import click

from warehouse.config import load_settings

# Modules exposing a click command or group named ``command``.
COMMAND_MODULES: list[str] = [
    "warehouse.ingest",
    "warehouse.transactions",
    "warehouse.build",
    "warehouse.publish",
    "warehouse.pipeline",
    "mining.clv_cli",
    "warehouse.analyst",
    "mining.features_cli",
    "mining.train_cli",
    "mining.score_cli",
    "warehouse.demo",
    "warehouse.generate.command",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """crmwh: a customer-loyalty warehouse (OLAP cubes and data mining for CRM)."""


@main.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (paths resolved).")
def config_command(as_json: bool) -> None:
    """Print the resolved configuration (defaults overridden by CRMWH_* variables)."""
    settings = load_settings()
    if as_json:
        click.echo(settings.to_json())
        return
    for name, value in sorted(vars(settings).items()):
        click.echo(f"{name:28} {value}")


for _module in COMMAND_MODULES:
    _loaded = importlib.import_module(_module)
    # A module with several top-level commands lists them in ``commands``.
    for _command in getattr(_loaded, "commands", [_loaded.command]):
        main.add_command(_command)
