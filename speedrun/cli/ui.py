"""`speedrun ui`: the database in a browser, live and read-only (speedrun.ui)."""

from __future__ import annotations

from typing import Optional

import typer

from speedrun.cli.app import app, notify, state
from speedrun.errors import SpeedrunError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command("ui")
def ui_command(
    db: Optional[str] = typer.Option(None, "--db", help="Database to serve (a file path or URL). [default: the global --db, $SPEEDRUN_DB or ./runs.db]", show_default=False),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Anything but this machine's loopback shows your runs to the network: a warning is printed."),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in the default browser."),
) -> None:
    """Serve the runs to a browser: a sortable, paginated table, each run's curves growing live while it
    trains, compare of runs and groups with the same verdict as `speedrun compare`, records and the report.

    The database is opened for reading only. Every page has its data as JSON under /api/.

    Example:

    \b
        speedrun ui
        speedrun ui --db "$SPEEDRUN_DB" --port 8765 --open
    """
    import uvicorn

    from speedrun.tracking.store import Store
    from speedrun.ui.app import create_app

    if db is not None:
        state.db = db
    store = Store.open_read_only(state.db)
    state.store = store
    if host not in LOOPBACK:
        notify(f"Warning: listening on {host}: anyone who can reach this machine on port {port} can "
               "read every run (titles, notes, logs). Use --host 127.0.0.1 to keep it to this machine.")
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    notify(f"Serving {store.label} read-only at {url} (Ctrl-C to stop)")
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    try:
        uvicorn.run(create_app(store), host=host, port=port, log_level="warning")
    except OSError as exc:  # the port is taken, the address is not this machine's
        raise SpeedrunError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
