"""`photo-organizer cloud ...`: operator commands against a deployed stack (the user's own AWS account)."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

cloud_app = typer.Typer(help="Operator commands against a deployed stack.", no_args_is_help=True)
console = Console()
DEFAULT_SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "coffee_exif_gps.jpg"


@cloud_app.command("smoke")
def smoke(
    token: Annotated[str, typer.Option("--token", envvar="PO_TOKEN",
                                       help="An ID token of a user of the deployed pool (sign in on the hosted UI).")],
    prefix: Annotated[str, typer.Option(help="Stack name prefix: <app_name>-<stage> from cdk.json.")] = "photo-organizer-dev",
    region: Annotated[str | None, typer.Option(envvar="AWS_REGION")] = None,
    api_url: Annotated[str | None, typer.Option(envvar="PO_API_URL", help="Default: the api stack's ApiUrl output.")] = None,
    sample: Annotated[Path | None, typer.Option(help="A JPEG to send (default: a bundled sample photo).")] = None,
    skip_analysis: Annotated[bool, typer.Option(help="Do not start the analysis Glue job.")] = False,
    job_timeout_s: Annotated[float, typer.Option(help="How long to wait for the Glue job run.")] = 1800.0,
) -> None:
    """Upload a sample through the deployed API, wait for READY, run the analysis job, find the photo by search,
    delete it. Prints each step with its time; exits 1 if any step failed. The photo is deleted in every case."""
    from photo_organizer.bootstrap import cloud_operator
    from photo_organizer.local_stack.client import PhotoApiClient
    from photo_organizer.services.cloud_smoke import CloudSmoke, SmokeSettings

    operator = cloud_operator(region)
    job = None
    if not skip_analysis:
        job = operator.stack_outputs(f"{prefix}-analysis").get("AnalyzePhotosJobName")
    api_url = api_url or operator.stack_outputs(f"{prefix}-api")["ApiUrl"]
    data = (sample or DEFAULT_SAMPLE).read_bytes()
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
    with PhotoApiClient(api_url, token) as client:
        report = CloudSmoke(client, operator.jobs, SmokeSettings(analysis_job=job, job_timeout_s=job_timeout_s)).run(
            data, run_id=run_id)
    table = Table("step", "result", "seconds", "detail")
    for step in report.steps:
        table.add_row(step.name, "[green]ok[/]" if step.ok else "[red]FAILED[/]", f"{step.seconds:.1f}", step.detail)
    console.print(table)
    if not report.ok:
        raise typer.Exit(1)
