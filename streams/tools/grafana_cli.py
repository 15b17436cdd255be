"""``tocsin grafana``: push the dashboards to a Grafana."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

grafana_app = typer.Typer(help="Grafana dashboards and warning annotations.",
                          no_args_is_help=True,
                          epilog="Example: tocsin grafana push --url http://localhost:3000")


@grafana_app.command("push", epilog="Example: TOCSIN_GRAFANA_TOKEN=glsa_... tocsin grafana "
                     "push --url http://localhost:3000 --folder-uid tocsin")
def grafana_push(
    url: Annotated[str | None, typer.Option(
        help="Grafana base URL (default: TOCSIN_GRAFANA_URL).")] = None,
    token: Annotated[str | None, typer.Option(
        help="Service-account token (default: TOCSIN_GRAFANA_TOKEN); never printed.",
        show_default=False)] = None,
    folder_uid: Annotated[str | None, typer.Option(
        help="Folder to put the dashboards in (default: General).")] = None,
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Directory of dashboard JSON files (default: the packaged "
        "dashboards/json).")] = None,
) -> None:
    """Create or overwrite the dashboards in Grafana (POST /api/dashboards/db)."""
    from streams.core.errors import ConfigError
    from streams.core.settings import load_settings
    from streams.publish.grafana import dashboard_files, push_dashboards

    s = load_settings()
    base = url or s.grafana_url
    if not base:
        raise ConfigError("no Grafana URL: pass --url or set TOCSIN_GRAFANA_URL")
    secret = token if token is not None else (
        s.grafana_token.get_secret_value() if s.grafana_token is not None else None)
    if directory is None:  # the packaged dashboards, installed beside streams
        directory = Path(__file__).resolve().parents[2] / "dashboards" / "json"
    files = dashboard_files(directory)
    pushed = push_dashboards(base, secret, files, folder_uid)
    for path, where in zip(files, pushed, strict=True):
        typer.echo(f"pushed {path.name} -> {where}")
