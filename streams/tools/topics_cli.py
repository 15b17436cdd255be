"""``tocsin topics``: the topic catalogue, listed or created."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from streams.tools.cli_common import BrokerOption, settings_with

topics_app = typer.Typer(help="Topic catalogue.", no_args_is_help=True,
                         epilog="Example: tocsin topics create --broker 127.0.0.1:9092")


@topics_app.command("create", epilog="Example: TOCSIN_PARTITIONS=8 tocsin topics create "
                    "--broker k1:9092,k2:9092")
def topics_create(broker: BrokerOption = None) -> None:
    """Create the catalogue's topics (idempotent)."""
    from streams.core.topics import create_topics

    for name, outcome in create_topics(settings_with(broker=broker)).items():
        typer.echo(f"{outcome:8} {name}")


@topics_app.command("list", epilog="Example: TOCSIN_TOPIC_PREFIX=test- tocsin topics list")
def topics_list() -> None:
    """Print the topic catalogue: partitions, retention, clean-up policy and what each
    topic holds."""
    from streams.core.topics import CATALOGUE

    s = settings_with()
    names = [s.topic_prefix + t.name for t in CATALOGUE]
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("topic", no_wrap=False, overflow="fold",
                     min_width=min(40, max(map(len, names))))
    table.add_column("parts", justify="right", no_wrap=True)
    table.add_column("kept", justify="right", no_wrap=True)
    table.add_column("cleanup", no_wrap=True)
    table.add_column("holds", ratio=1, overflow="fold")
    for name, t in zip(names, CATALOGUE, strict=True):
        table.add_row(name, str(t.partitions or s.partitions), f"{t.retention_ms // 86400000}d",
                      "compact" if t.compacted else "delete", t.description)
    Console().print(table)
