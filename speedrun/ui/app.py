"""`speedrun ui`: the database served to a browser, read-only, as a Starlette app.

Every page has a JSON twin under /api with the fields of the CLI's `--json`
(`analysis.views`): the page and the CLI show the same numbers because they
call the same functions. Pages are rendered server-side from Jinja templates
(templates/ui/), with htmx for partial updates (the runs table, a running run's
row) and uPlot for curves; both are vendored under static/vendor.

Scale: the runs table reads one page of runs (`Store.page_runs`); a run page
reads the run once and a watching page asks `/api/runs/{ref}/live?after=N`
for the epochs it has not seen; curves are downsampled to `MAX_POINTS`.
Safety: the store is opened read-only at the connection (`Store.open_read_only`);
templates autoescape; user Markdown is rendered with raw HTML disabled.
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from speedrun.analysis.report import markdown_renderer
from speedrun.analysis.views import run_detail, run_summary
from speedrun.domain.hardware import hardware_class_of
from speedrun.errors import QueryError, RunNotFound, SpeedrunError
from speedrun.text import fmt_num
from speedrun.tracking.db import resource_dir
from speedrun.domain.records import EPOCH_FIELDS
from speedrun.tracking.store import PAGE_ORDERS, Store

from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
PER_PAGE = 50
MAX_PER_PAGE = 500
MAX_POINTS = 1000  # per curve: longer series are downsampled on the server
LIVE_POLL_MS = 2000


def downsample(points: Sequence[Any], limit: int = MAX_POINTS) -> list[Any]:
    """At most `limit` points, evenly spaced, always keeping the first and the last."""
    n = len(points)
    if n <= limit:
        return list(points)
    step = (n - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def query_message(exc: QueryError) -> str:
    """A bad filter as the CLI says it: the reason, the query, and a caret under the place."""
    return f"{exc}\n  {exc.query}\n  {' ' * exc.position}^"


def _script_json(data: Any) -> str:
    """JSON to embed in a <script type="application/json">: '<', '>' and '&' escaped, so no user text
    can close the element."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def curves(run: Any) -> dict[str, Any]:
    """A run's per-epoch series for the chart: epoch, val accuracy, losses, epoch time (downsampled)."""
    epochs = downsample(run.epochs if hasattr(run, "epochs") else [])
    series = {"epoch": [e.epoch for e in epochs]}
    for name in ("val_acc", "train_loss", "val_loss", "duration_s", "elapsed_s"):
        series[name] = [_finite(getattr(e, name)) for e in epochs]
    return series


def epoch_json(epoch: Any) -> dict[str, Any]:
    return {"epoch": epoch.epoch} | {f: _finite(getattr(epoch, f)) for f in EPOCH_FIELDS}


class UI:
    """The routes, over one read-only store."""

    def __init__(self, store: Store):
        self.store = store
        self.md = markdown_renderer()
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(resource_dir("templates") / "ui")),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters["num"] = lambda v, spec=".2f": fmt_num(v, spec)
        self.env.filters["markdown"] = lambda text: jinja2.utils.markupsafe.Markup(self.md.render(text or ""))
        self.env.globals["live_poll_ms"] = LIVE_POLL_MS
        self._pool: tuple[tuple, Any] | None = None
        self._baselines: tuple[tuple, Any, list[Any]] | None = None  # (class, version), Baselines, runs

    # ------------------------------------------------------------------ helpers
    def noise_pool(self) -> Any:
        """The user's repeats that verdicts measure spreads against (metrics.NoisePool over the store),
        kept while the runs do not change (`Store.data_version`): building it reads every run of a
        hardware class, seconds at 10,000 runs, and a page that compares must not pay that each time."""
        from speedrun.analysis.metrics import NoisePool

        version = self.store.data_version()
        if self._pool is None or self._pool[0] != version:
            self._pool = (version, NoisePool.from_store(self.store))
        return self._pool[1]

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A template rendered; `root` is where the app is mounted (behind a proxy's path prefix too)."""
        root = request.scope.get("root_path", "").rstrip("/") + "/"
        html = self.env.get_template(name).render(db=self.store.label, root=root, **context)
        return HTMLResponse(html, status_code=status)

    def run_or_404(self, ref: str) -> Any:
        try:
            return self.store.get_run(ref)
        except RunNotFound as exc:
            raise HTTPException(404, str(exc)) from None

    def _runs_query(self, request: Request) -> dict[str, Any]:
        q = request.query_params
        sort = q.get("sort", "notebook")
        if sort not in PAGE_ORDERS:
            raise HTTPException(400, f"cannot sort by {sort!r}; choose from {', '.join(sorted(PAGE_ORDERS))}")
        try:
            page = int(q.get("page", "1"))
            per = int(q.get("per", str(PER_PAGE)))
        except ValueError:
            raise HTTPException(400, "page and per must be whole numbers") from None
        if not (1 <= page <= 10**9 and 1 <= per <= MAX_PER_PAGE):
            raise HTTPException(400, f"page must be 1 or more and per between 1 and {MAX_PER_PAGE}")
        columns = [c for c in q.get("cols", "").split(",") if c][:20]
        where = q.get("where", "").strip() or None
        return {"sort": sort, "desc": q.get("desc") == "1", "page": page, "per": per, "cols": columns,
                "where": where}

    def _runs_page(self, query: dict[str, Any]) -> tuple[list[Any], int]:
        """One page of the table; a malformed `where` is a 400 whose message is the CLI's, caret and all."""
        try:
            return self.store.page_runs(sort=query["sort"], descending=query["desc"], where=query["where"],
                                        offset=(query["page"] - 1) * query["per"], limit=query["per"])
        except QueryError as exc:
            raise HTTPException(400, query_message(exc)) from None

    def _rows(self, runs: Sequence[Any], columns: Sequence[str]) -> list[dict[str, Any]]:
        rows = []
        for run in runs:
            summary = run_summary(run)
            summary["picked"] = [summary["params"].get(c) for c in columns]
            rows.append(summary)
        return rows

    # ------------------------------------------------------------------ pages
    def runs(self, request: Request) -> Response:
        query = self._runs_query(request)
        partial = bool(request.headers.get("HX-Request"))
        try:
            runs, total = self._runs_page(query)
            error = None
        except HTTPException as exc:
            if not partial:  # a page load with a bad filter: the error page, 400
                raise
            runs, total, error = [], 0, exc.detail  # typed in the filter box: shown above an empty table
        context = dict(query=query, rows=self._rows(runs, query["cols"]), total=total, error=error,
                       pages=max(1, -(-total // query["per"])), orders=sorted(PAGE_ORDERS),
                       param_names=self.store.param_names())
        return self.page(request, "runs_table.html.j2" if partial else "runs.html.j2", **context)

    def run_row(self, request: Request) -> Response:
        run = self.run_or_404(request.path_params["ref"])
        columns = [c for c in request.query_params.get("cols", "").split(",") if c][:20]
        return self.page(request, "run_row.html.j2", row=self._rows([run], columns)[0], query={"cols": columns})

    def run(self, request: Request) -> Response:
        run = self.run_or_404(request.path_params["ref"])
        detail = run_detail(run)
        return self.page(request, "run.html.j2", run=detail, hardware=hardware_class_of(run),
                         chart=_script_json({"id": run.id, "status": detail["status"], "series": curves(run),
                                             "live": detail["status"] == "running"}),
                         log=run.log_text)

    def run_verdict(self, request: Request) -> Response:
        """The run against its baseline: the report's versus lines (a fragment loaded after the page)."""
        from speedrun.analysis.baselines import Baselines
        from speedrun.analysis.groups import named_label

        run = self.run_or_404(request.path_params["ref"])
        baselines, runs = self._baselines_on(hardware_class_of(run))
        label = named_label(run)
        if label is not None and not any(label in (r.display_label, str(r.id)) for r in runs):
            try:  # the run its text names, on another machine: read for this run alone
                named = self.store.get_run(label)
            except SpeedrunError:  # no such run, or a label several runs share: none is named
                pass
            else:
                runs = [*runs, named]
                baselines = Baselines(runs, pool=self.noise_pool())
        return self.page(request, "verdict.html.j2", lines=baselines.versus_lines(run))

    def _baselines_on(self, hardware: str) -> tuple[Any, list[Any]]:
        """(Baselines, runs) of one hardware class: a baseline is of the run's class (or named by its
        text), so only that class is read. The last class asked for is kept while the runs do not
        change (one class, so that the server's memory stays that of one class's runs)."""
        from speedrun.analysis.baselines import Baselines

        key = (hardware, self.store.data_version())
        if self._baselines is None or self._baselines[0] != key:
            runs = list(self.store.list_runs(hardware_class=hardware))
            self._baselines = (key, Baselines(runs, pool=self.noise_pool()), runs)
        return self._baselines[1], self._baselines[2]

    def compare(self, request: Request) -> Response:
        data, refs = self._comparison(request)
        return self.page(request, "compare.html.j2", data=data, refs=refs, chart=_script_json(data.get("curve")),
                         side_names=[s["name"] for s in data["sides"]])

    def _comparison(self, request: Request) -> tuple[dict[str, Any], list[str]]:
        from speedrun.analysis.compare import build_comparison, load_sides

        refs = [r for value in request.query_params.getlist("runs") for r in value.split(",") if r.strip()]
        by = request.query_params.get("by", "epoch")
        try:
            sides = load_sides(self.store, refs)
            data = build_comparison(sides, by=by, pool=self.noise_pool())
        except RunNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except SpeedrunError as exc:
            raise HTTPException(400, str(exc)) from None
        if data.get("curve"):
            data["curve"]["rows"] = downsample(data["curve"]["rows"])
        return data, refs

    def records(self, request: Request) -> Response:
        """The report's leaderboard (per hardware class and epoch budget) and its groups of repeats."""
        from speedrun.analysis import leaderboard, metrics
        from speedrun.analysis.report import load_runs, notebook_order

        ordered = notebook_order(load_runs(self.store))
        groups = leaderboard.group_rows(ordered)
        for group in groups:
            group.pop("members", None)
        return self.page(request, "records.html.j2", groups=groups,
                         leaderboard=leaderboard.leaderboard(ordered, metrics.DEFAULT_TARGETS, metrics.ALPHA,
                                                             metrics.NoisePool(ordered)))

    def _sweeps(self) -> list[tuple]:
        """(spec, trials, answer) of every sweep, as `sweep show` and the report answer them."""
        from speedrun.analysis.metrics import ALPHA
        from speedrun.sweep.runner import summaries

        return summaries(self.store, alpha=ALPHA, pool=self.noise_pool())

    def sweeps(self, request: Request) -> Response:
        """Each sweep's trials ranked, its answer (the winner's verdict, the importances) and the
        objective against each option, drawn as the report draws them."""
        from speedrun.sweep.summary import sweep_section

        sections = [sweep_section(spec, trials, answer, None, None, True) for spec, trials, answer in self._sweeps()]
        return self.page(request, "sweeps.html.j2", sweeps=sections)

    def api_sweeps(self, request: Request) -> Response:
        return JSONResponse([answer for _, _, answer in self._sweeps()])

    def report(self, request: Request) -> Response:
        from speedrun.analysis.report import build_context, load_runs, render
        from speedrun.analysis.metrics import NoisePool
        from speedrun.domain.memo import collector_paused

        with collector_paused():
            runs = load_runs(self.store)
            context = build_context(runs, pool=NoisePool(runs), svg=True, series=self.store.list_series())
            html = render(context, "html")
        return HTMLResponse(html)

    # ------------------------------------------------------------------ JSON twins
    def api_runs(self, request: Request) -> Response:
        query = self._runs_query(request)
        runs, total = self._runs_page(query)
        return JSONResponse({"total": total, "page": query["page"], "per": query["per"], "sort": query["sort"],
                             "desc": query["desc"], "runs": [run_summary(r) for r in runs]})

    def api_run(self, request: Request) -> Response:
        return JSONResponse(run_detail(self.run_or_404(request.path_params["ref"])))

    def api_live(self, request: Request) -> Response:
        try:
            after = int(request.query_params.get("after", "0"))
        except ValueError:
            raise HTTPException(400, "after must be a whole number") from None
        try:
            run, epochs = self.store.live_state(request.path_params["ref"], after_epoch=after)
        except RunNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        return JSONResponse({"id": run.id, "status": run.status, "epochs_completed": run.epochs_completed,
                             "epochs": run.epochs_planned, "final_val_acc": run.final_val_acc,
                             "new_epochs": [epoch_json(e) for e in epochs]})

    def api_compare(self, request: Request) -> Response:
        return JSONResponse(self._comparison(request)[0])

    # ------------------------------------------------------------------ errors
    def error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "the page could not be built"
        if isinstance(exc, SpeedrunError):
            status, detail = 400, str(exc)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": detail}, status_code=status)
        return self.page(request, "error.html.j2", status=status, code=status, message=detail)


def create_app(store: Store) -> Starlette:
    """The UI over `store` (open it with `Store.open_read_only`)."""
    ui = UI(store)
    routes = [
        Route("/", ui.runs),
        Route("/runs/{ref}", ui.run),
        Route("/runs/{ref}/row", ui.run_row),
        Route("/runs/{ref}/verdict", ui.run_verdict),
        Route("/compare", ui.compare),
        Route("/records", ui.records),
        Route("/sweeps", ui.sweeps),
        Route("/report", ui.report),
        Route("/api/runs", ui.api_runs),
        Route("/api/runs/{ref}", ui.api_run),
        Route("/api/runs/{ref}/live", ui.api_live),
        Route("/api/compare", ui.api_compare),
        Route("/api/sweeps", ui.api_sweeps),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    handlers = {HTTPException: ui.error, SpeedrunError: ui.error, Exception: ui.error}
    return Starlette(routes=routes, exception_handlers=handlers)
