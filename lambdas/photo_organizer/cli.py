"""`photo-organizer`: run the local backend, manage local users, and use the API like any client would."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from photo_organizer.cli_cloud import cloud_app

app = typer.Typer(help="Photo Organizer: a private, searchable photo library (local backend and API client).",
                  no_args_is_help=True, add_completion=False)
users_app = typer.Typer(help="Local users (the local stand-in for Cognito).", no_args_is_help=True)
photos_app = typer.Typer(help="Your photos, through the HTTP API.", no_args_is_help=True)
search_app = typer.Typer(help="Operator commands for the cloud search index (OpenSearch).", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(photos_app, name="photos")
app.add_typer(search_app, name="search")
app.add_typer(cloud_app, name="cloud")

Table_ = Annotated[str, typer.Option("--table", envvar="PO_TABLE_NAME", help="The DynamoDB table.")]
console = Console()

DataDir = Annotated[Path, typer.Option("--data-dir", envvar="PO_DATA_DIR", help="Where the local backend keeps everything.")]
ApiUrl = Annotated[str, typer.Option("--api-url", envvar="PO_API_URL", help="Base URL of the API.")]
Token = Annotated[str, typer.Option("--token", envvar="PO_TOKEN", help="A bearer token (ID token).")]
DEFAULT_DATA_DIR = Path("photo-organizer-data")
DEFAULT_PORT = 8787
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif"}


@app.command()
def serve(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    port: Annotated[int, typer.Option(help="Loopback port (0 picks a free one).")] = DEFAULT_PORT,
) -> None:
    """Serve the API, uploads and the web app on loopback until Ctrl-C."""
    from photo_organizer.local_stack.stack import LocalStack

    stack = LocalStack(data_dir, port=port)
    console.print(f"Photo Organizer (local) on [bold]{stack.url}[/]  data: {data_dir}  (Ctrl-C stops)")
    stack.serve_forever()


@users_app.command("add")
def users_add(
    username: str,
    password: Annotated[str | None, typer.Option(help="Leave out to get a generated one.")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    api_url: ApiUrl = f"http://127.0.0.1:{DEFAULT_PORT}",
) -> None:
    """Create a local user and print its password and a token."""
    from photo_organizer.local_stack.identity import LocalIdentityProvider

    identity = LocalIdentityProvider(data_dir, issuer=f"{api_url.rstrip('/')}/auth")
    user, secret = identity.add_user(username, password)
    console.print(f"user [bold]{user.username}[/] sub={user.sub}\npassword: {secret}")
    console.print(f"token: {identity.issue_token(user)}")


@users_app.command("token")
def users_token(username: str, data_dir: DataDir = DEFAULT_DATA_DIR, api_url: ApiUrl = f"http://127.0.0.1:{DEFAULT_PORT}") -> None:
    """Print a fresh 12-hour token for a local user of the server at --api-url."""
    from photo_organizer.local_stack.identity import LocalIdentityProvider

    identity = LocalIdentityProvider(data_dir, issuer=f"{api_url.rstrip('/')}/auth")
    user = identity.get_user(username)
    if user is None:
        raise typer.BadParameter(f"no user {username!r}")
    typer.echo(identity.issue_token(user))


@app.command()
def upload(paths: list[Path], api_url: ApiUrl, token: Token) -> None:
    """Upload photos (files or folders) through the API and its upload URLs, like any client."""
    from photo_organizer.local_stack.client import PhotoApiClient

    with PhotoApiClient(api_url, token) as client:
        results = upload_all(client, expand(paths))
    show_results(results)
    if any(r[1] == "FAILED" for r in results):
        raise typer.Exit(1)


@photos_app.command("list")
def photos_list(api_url: ApiUrl, token: Token) -> None:
    """List your library, newest first."""
    from photo_organizer.local_stack.client import PhotoApiClient

    with PhotoApiClient(api_url, token) as client:
        items = client.all_photos()
    table = Table("taken / uploaded", "filename", "size", "photo id")
    for item in items:
        when = (item.get("taken_at") or item["uploaded_at"])[:19].replace("T", " ")
        table.add_row(when, item["filename"], f"{item.get('width')}x{item.get('height')}", item["photo_id"])
    console.print(table)
    console.print(f"{len(items)} photos")


@app.command()
def analyze(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workers: Annotated[int, typer.Option(help="Worker processes (each loads the models once).")] = 2,
) -> None:
    """Analyse every photo that needs it (labels, faces, text, places, captions), then group faces into people."""
    analyse_with_progress(data_dir, workers)


def analyse_with_progress(data_dir: Path, workers: int) -> None:
    from photo_organizer.local_stack.analysis_runner import analyse_library

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("analysing", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        summary = analyse_library(data_dir, workers=workers, on_progress=update)
    failed = sum(summary.failures.values())
    console.print(
        f"analysed {summary.photos - failed} photos ({summary.copied} copied from duplicates), {failed} failed"
        + (f": {dict(summary.failures)}" if failed else "")
    )


@search_app.command("reindex")
def search_reindex(
    table: Table_,
    version: Annotated[int, typer.Option(help="The new index version: builds <alias>-v<version>.")],
) -> None:
    """Full rebuild from DynamoDB into a new versioned index, then an atomic alias swap (no downtime), then a
    reconcile pass for the stream writes that landed in the old index meanwhile. Reads PO_OPENSEARCH_* env."""
    from photo_organizer.bootstrap import search_maintenance

    search = search_maintenance(table)
    report = search.index.reindex_from(search.documents(), version)
    console.print(report)
    drift = search.index.reconcile(search.documents())
    console.print(f"after the swap: {len(drift.missing)} missing, {len(drift.stale)} stale, {len(drift.orphaned)} orphaned repaired")


@search_app.command("reconcile")
def search_reconcile(
    table: Table_,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report drift without repairing it.")] = False,
) -> None:
    """Finds documents missing, stale or orphaned in the index against the table, and repairs them."""
    from photo_organizer.bootstrap import search_maintenance

    search = search_maintenance(table)
    drift = search.index.reconcile(search.documents(), apply=not dry_run)
    verb = "found" if dry_run else "repaired"
    console.print(f"{verb}: {len(drift.missing)} missing, {len(drift.stale)} stale, {len(drift.orphaned)} orphaned")


@app.command()
def demo(
    data_dir: DataDir = Path(".demo"),
    port: Annotated[int, typer.Option(help="Loopback port (0 picks a free one).")] = DEFAULT_PORT,
    samples: Annotated[Path, typer.Option(help="Folder of photos to upload.")] = Path("samples"),
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="Keep serving after the upload.")] = True,
) -> None:
    """Start the local stack, create a demo user, upload the sample photos through the real flow, and serve."""
    from photo_organizer.local_stack.client import PhotoApiClient
    from photo_organizer.local_stack.stack import LocalStack

    stack = LocalStack(data_dir, port=port).start_in_background()
    try:
        user = stack.identity.get_user("demo")
        password = None
        if user is None:
            user, password = stack.identity.add_user("demo", os.environ.get("PO_DEMO_PASSWORD") or None)
        token = stack.identity.issue_token(user)
        with PhotoApiClient(stack.url, token) as client:
            results = upload_all(client, expand([samples]))
            show_results(results)
            analyse_with_progress(data_dir, workers=2)
            show_analysis(client)
        console.print(f"\n[bold green]Photo Organizer is serving at {stack.url}[/]")
        (data_dir / "token").write_text(token + "\n")
        console.print(f"web app:   {stack.url}/#token={token}", soft_wrap=True)
        console.print(f"API docs:  {stack.url}/openapi.json")
        console.print(f"user: demo{f'  password: {password}' if password else ''}")
        console.print(f"token:     {token}", soft_wrap=True)
        console.print(f"try:       export PO_API_URL={stack.url} PO_TOKEN=$(cat {data_dir / 'token'})", soft_wrap=True)
        console.print('           curl -H "Authorization: Bearer $PO_TOKEN" $PO_API_URL/photos', soft_wrap=True)
        if serve_after:
            console.print("Ctrl-C stops it.")
            try:
                threading_wait_forever()
            except KeyboardInterrupt:
                console.print("stopping")
    finally:
        stack.stop()


def threading_wait_forever() -> None:
    import threading

    threading.Event().wait()


def expand(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise typer.BadParameter(f"{path} does not exist")
    return files


def upload_all(client, files: list[Path]) -> list[tuple[str, str, str]]:
    """Uploads every file, then waits for each to be processed; returns (name, status, detail) rows."""
    from photo_organizer.local_stack.client import ApiError

    started: list[tuple[Path, str]] = []
    results: list[tuple[str, str, str]] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        sending = progress.add_task("uploading", total=len(files))
        for path in files:
            try:
                started.append((path, client.upload(path)))
            except ApiError as exc:
                results.append((path.name, "FAILED", str(exc)))
            progress.advance(sending)
        processing = progress.add_task("processing", total=len(started))
        for path, photo_id in started:
            photo = client.wait_until_processed(photo_id)
            detail = photo.get("rejection_message") or (
                f"duplicate of {photo['duplicate_of']}" if photo.get("duplicate_of") else
                f"{photo.get('width')}x{photo.get('height')}"
            )
            results.append((path.name, photo["status"], detail))
            progress.advance(processing)
    return results


def show_analysis(client) -> None:
    """What analysis found, read back through the API like any client would."""
    table = Table("file", "caption", "tags", "people")
    for item in client.all_photos():
        analysis = client.photo(item["photo_id"]).get("analysis") or {}
        people = ", ".join(p["name"] or "unnamed" for p in analysis.get("people", []))
        table.add_row(item["filename"], analysis.get("caption", ""), ", ".join(analysis.get("tags", [])[:4]), people)
    console.print(table)
    console.print("Local analysis is basic next to Rekognition: ImageNet labels, dlib faces, OCR where a quick check finds printed lines.")


def show_results(results: list[tuple[str, str, str]]) -> None:
    table = Table("file", "status", "detail")
    colours = {"READY": "green", "DUPLICATE": "yellow", "REJECTED": "red", "FAILED": "red"}
    for name, status, detail in results:
        table.add_row(name, f"[{colours.get(status, 'white')}]{status}[/]", detail)
    console.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
