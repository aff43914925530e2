"""The board's web application: login, pages and the JSON its pages poll, all through the scheduler's client API
(and the serving service's, for published models).

Who may call it: anyone who reaches `board.listen`; every page and JSON call but the
login form, the static files and `/healthz` needs a login. A login is an API token of
this member (checked by the scheduler's WhoAmI); the browser holds only an encrypted,
signed, HttpOnly, SameSite=Strict session cookie naming a session id, and each POST must
carry the login's CSRF value. The board grants nothing by itself: each call goes to the
scheduler (or the serving service) with the user's own token, which refuses what the
user's role does not allow.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import get_session
from aiohttp_session import setup as setup_sessions
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from services.board import present
from services.board.constants import (
    COOKIE_NAME,
    CSRF_FIELD,
    CSRF_HEADER,
    JOB_STATUSES,
    JOBS_PAGE_SIZE,
    OPEN_PATHS,
    OPEN_PREFIXES,
    SCHEDULER_TIMEOUT_S,
    SESSION_KEY_BYTES,
    STATIC_DIR,
    TEMPLATES_DIR,
)
from services.board.sessions import Login, LoginStore
from services.client.sdk import (
    AsyncSchedulerClient,
    AsyncServingClient,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
    WeftClientError,
    task_status_name,
)
from services.common.config import MemberConfig
from services.serving.constants import SERVABLE_MODULES

log = logging.getLogger("weft.board")

LOGIN = "weft_login"
STATUS_VALUE = {name: index + 1 for index, name in enumerate(JOB_STATUSES)}


class BoardSettings:
    """What the board needs of the member's config."""

    def __init__(self, config: MemberConfig) -> None:
        self.member_id = config.member_id
        self.member_name = config.name or config.member_id[:8]
        self.scheduler = scheduler_endpoint(config)
        self.serving = serving_endpoint(config)
        self.member_names = {config.member_id: self.member_name}
        self.member_names.update({member_id: peer.name or member_id[:8] for member_id, peer in config.peers.items()})
        self.ttl_s = float(config.board.session_ttl_s)
        self.secure_cookie = config.board.secure_cookie


STORE = web.AppKey("logins", LoginStore)
SETTINGS = web.AppKey("settings", BoardSettings)


def scheduler_endpoint(config: MemberConfig) -> str:
    """The scheduler the board calls: board.scheduler, else scheduler.listen (a wildcard host as loopback)."""
    if config.board.scheduler:
        return config.board.scheduler
    return _loopback(config.scheduler.listen)


def serving_endpoint(config: MemberConfig) -> str:
    """The serving service the board calls: board.serving, else serving.listen (a wildcard host as loopback)."""
    if config.board.serving:
        return config.board.serving
    return _loopback(config.serving.listen)


def _loopback(listen: str) -> str:
    host, _, port = listen.rpartition(":")
    return f"{'127.0.0.1' if host in ('', '0.0.0.0', '[::]', '::') else host}:{port}"


def session_key(path: Path) -> bytes:
    """The cookie key kept in `path` (hex, mode 0600), made on first use."""
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(SESSION_KEY_BYTES)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(key.hex())
    return key


def _login(request: web.Request) -> Login:
    login: Login = request[LOGIN]
    return login


def _client(request: web.Request) -> AsyncSchedulerClient:
    return _login(request).client


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/")


@web.middleware
async def require_login(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                        ) -> web.StreamResponse:
    """No page without a login; a POST needs the login's CSRF value; scheduler refusals become HTTP errors."""
    if request.path in OPEN_PATHS or request.path.startswith(OPEN_PREFIXES):
        return await handler(request)
    session = await get_session(request)
    store = request.app[STORE]
    login = store.get(session.get("sid"))
    if login is None:
        if _wants_json(request):
            raise web.HTTPUnauthorized(text=json.dumps({"error": "log in first"}), content_type="application/json")
        raise web.HTTPFound("/login")
    if request.method == "POST":
        sent = request.headers.get(CSRF_HEADER) or (await request.post()).get(CSRF_FIELD)
        if not isinstance(sent, str) or not secrets.compare_digest(sent, login.csrf):
            raise web.HTTPForbidden(text="the form's CSRF value is missing or wrong; reload the page")
    request[LOGIN] = login
    try:
        return await handler(request)
    except UnauthenticatedError as exc:
        await store.drop(session.get("sid"))
        session.invalidate()
        if _wants_json(request):
            raise web.HTTPUnauthorized(text=json.dumps({"error": str(exc)}), content_type="application/json") from None
        raise web.HTTPFound("/login") from None
    except PermissionDeniedError as exc:
        return _error(request, web.HTTPForbidden.status_code, f"refused by the scheduler: {exc}")
    except NotFoundError as exc:
        return _error(request, web.HTTPNotFound.status_code, str(exc))
    except WeftClientError as exc:
        return _error(request, web.HTTPBadGateway.status_code, f"{exc.code}: {exc}")


def _error(request: web.Request, status: int, message: str) -> web.StreamResponse:
    if _wants_json(request):
        return web.json_response({"error": message}, status=status)
    return _render("error.html", request, {"message": message}, status=status)


def _render(template: str, request: web.Request, context: dict[str, Any], status: int = 200) -> web.Response:
    settings = request.app[SETTINGS]
    login: Login | None = request.get(LOGIN)
    notices: list[tuple[str, str]] = []
    if login is not None and request.method == "GET":
        notices, login.notices = login.notices, []
    base = {"member_name": settings.member_name, "member_id": settings.member_id, "login": login,
            "csrf": login.csrf if login else "", "path": request.path, "notices": notices}
    return aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)


# -- login ------------------------------------------------------------------------------
async def login_form(request: web.Request) -> web.Response:
    return _render("login.html", request, {"error": ""})


async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    token = str(form.get("token", "")).strip()
    settings = request.app[SETTINGS]
    client = AsyncSchedulerClient(settings.scheduler, SCHEDULER_TIMEOUT_S, token=token or None)
    try:
        if not token:
            raise UnauthenticatedError("UNAUTHENTICATED", "enter an API token of this member")
        me = await client.who_am_i()
    except WeftClientError as exc:
        await client.close()
        log.info("refused login from %s: %s", request.remote, exc)
        return _render("login.html", request, {"error": str(exc)}, status=web.HTTPUnauthorized.status_code)
    session = await get_session(request)
    await request.app[STORE].drop(session.get("sid"))
    session.clear()
    serving = AsyncServingClient(settings.serving, SCHEDULER_TIMEOUT_S, token=token)
    session["sid"] = request.app[STORE].add(client, serving, me.user, me.role)
    raise web.HTTPFound("/jobs")


async def logout(request: web.Request) -> web.Response:
    session = await get_session(request)
    await request.app[STORE].drop(session.get("sid"))
    session.invalidate()
    raise web.HTTPFound("/login")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/jobs")


# -- jobs -------------------------------------------------------------------------------
def _day_ms(text: str, end: bool) -> int:
    if not text:
        return 0
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise web.HTTPBadRequest(text=f"a date is YYYY-MM-DD, got {text!r}") from None
    return int(day.timestamp() * 1000) + (86_400_000 if end else 0)


async def _jobs(request: web.Request) -> list[dict[str, Any]]:
    query = request.query
    statuses = [STATUS_VALUE[s] for s in query.getall("status", []) if s in STATUS_VALUE]
    reply = await _client(request).list_jobs(
        page_size=JOBS_PAGE_SIZE, statuses=statuses, name_contains=query.get("name", ""),
        created_after_ms=_day_ms(query.get("from", ""), end=False),
        created_before_ms=_day_ms(query.get("to", ""), end=True),
    )
    return [present.job_row(job) for job in reply.jobs]


async def jobs_page(request: web.Request) -> web.Response:
    query = request.query
    return _render("jobs.html", request, {
        "jobs": await _jobs(request), "statuses": JOB_STATUSES, "chosen": query.getall("status", []),
        "name": query.get("name", ""), "from": query.get("from", ""), "to": query.get("to", ""),
    })


async def jobs_json(request: web.Request) -> web.Response:
    return web.json_response({"jobs": await _jobs(request)})


async def _job(request: web.Request) -> dict[str, Any]:
    job = await _client(request).get(request.match_info["job_id"])
    return present.job_view(job, request.app[SETTINGS].member_names)


async def job_page(request: web.Request) -> web.Response:
    return _render("job.html", request, {"job": await _job(request)})


async def job_json(request: web.Request) -> web.Response:
    return web.json_response(await _job(request))


async def job_stop(request: web.Request) -> web.Response:
    job_id = request.match_info["job_id"]
    await _client(request).stop(job_id, f"stopped from the board by {_login(request).user}")
    raise web.HTTPSeeOther(f"/jobs/{job_id}")


async def job_rerun(request: web.Request) -> web.Response:
    job_id = request.match_info["job_id"]
    await _client(request).rerun(job_id)
    raise web.HTTPSeeOther(f"/jobs/{job_id}")


# -- a task -----------------------------------------------------------------------------
async def _task(request: web.Request) -> dict[str, Any]:
    client = _client(request)
    job_id, component = request.match_info["job_id"], request.match_info["component"]
    job = await client.get(job_id)
    view = present.job_view(job, request.app[SETTINGS].member_names)
    tasks = [t for t in view["tasks"] if t["component"] == component]
    if not tasks:
        raise NotFoundError("NOT_FOUND", f"job {job_id} has no component {component!r}")
    mine = [t for t in tasks if t["member_id"] == request.app[SETTINGS].member_id]
    metrics = await client.metrics(job_id, component) if mine else []
    results = await client.results(job_id, component) if mine else []
    outputs = [{"role": r.task.party.role, "data": [{"name": d.output_name, "rows": d.row_count} for d in r.data],
                "models": [{"name": m.output_name, "version": m.version} for m in r.models]} for r in results]
    spec = json.loads(job.spec_json or "{}")
    return {
        "job_id": job_id, "job_name": job.name, "job_status": view["status"], "component": component,
        "tasks": tasks, "params": present.component_params(spec, component, [t["role"] for t in mine]),
        "metrics": present.metric_rows(metrics), "curves": present.curves(job_id, job.name, metrics),
        "outputs": outputs, "has_model": any(o["models"] for o in outputs),
        "log_roles": sorted({t["role"] for t in mine}),
    }


async def task_log(request: web.Request) -> web.StreamResponse:
    """A chunk of this member's task log from `offset` (the page polls with `next_offset`)."""
    job_id, component = request.match_info["job_id"], request.match_info["component"]
    try:
        offset = max(0, int(request.query.get("offset", "0")))
    except ValueError:
        return _error(request, web.HTTPBadRequest.status_code, "offset: not a number")
    chunk = await _client(request).task_log(job_id, component, offset=offset, role=request.query.get("role", ""))
    return web.json_response({
        "text": chunk.text, "next_offset": chunk.next_offset, "restarted": chunk.restarted,
        "complete": chunk.complete, "attempt": chunk.attempt,
        "status": task_status_name(chunk.status),
    })


async def task_events(request: web.Request) -> web.StreamResponse:
    """The task's progress and status changes as server-sent events, from now until the job ends."""
    job_id, component = request.match_info["job_id"], request.match_info["component"]
    names = request.app[SETTINGS].member_names
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    try:
        async for event in _client(request).watch(job_id):
            line = present.event_line(event, component, names)
            if line is not None:
                await response.write(f"data: {json.dumps(line)}\n\n".encode())
        await response.write(b"event: end\ndata: {}\n\n")
    except WeftClientError as exc:
        await response.write(f"event: failure\ndata: {json.dumps({'error': str(exc)})}\n\n".encode())
    except ConnectionResetError:
        pass  # the page was closed: stop following the job
    return response


async def task_page(request: web.Request) -> web.Response:
    return _render("task.html", request, {"task": await _task(request)})


async def task_json(request: web.Request) -> web.Response:
    return web.json_response(await _task(request))


# -- curves -----------------------------------------------------------------------------
async def _curves(request: web.Request) -> dict[str, Any]:
    """Every chosen job's curves on shared axes, a row of headline metrics per job, and the settings that differ."""
    client = _client(request)
    merged: dict[str, Any] = {"loss": [], "roc": [], "ks": [], "lift": [], "jobs": [], "differences": []}
    specs: dict[str, dict[str, Any]] = {}
    for job_id in request.query.getall("job", []):
        job = await client.get(job_id)
        metrics = await client.metrics(job_id)
        for kind, series in present.curves(job_id, job.name, metrics).items():
            merged[kind].extend(series)
        merged["jobs"].append(present.job_summary(job, metrics))
        specs[job_id] = json.loads(job.spec_json or "{}")
    if len(specs) > 1:
        merged["differences"] = present.parameter_differences(specs)
    return merged


async def curves_page(request: web.Request) -> web.Response:
    recent = (await _client(request).list_jobs(page_size=JOBS_PAGE_SIZE)).jobs
    return _render("curves.html", request, {
        "chosen": request.query.getall("job", []), "recent": [present.job_row(j) for j in recent],
    })


async def curves_json(request: web.Request) -> web.Response:
    return web.json_response(await _curves(request))


# -- a model ----------------------------------------------------------------------------
async def model_page(request: web.Request) -> web.Response:
    job_id, component = request.match_info["job_id"], request.match_info["component"]
    models = await _client(request).models(job_id, component)
    return _render("model.html", request, {
        "job_id": job_id, "component": component, "models": [present.model_view(m) for m in models],
        # the serving service decides whether this model can be published; the form is offered for its modules
        "publishable": _login(request).may_operate and any(m.module in SERVABLE_MODULES for m in models),
    })


# -- published models -------------------------------------------------------------------
async def _manage(request: web.Request, action: str, call: Callable[[], Awaitable[str]], back: str,
                  done: str = "/serving") -> web.StreamResponse:
    """A publish, rollback or unpublish at the serving service; its outcome is shown once on the next page.

    A role too low is a 403 with the service's reason; any other refusal goes back to `back`
    with the service's message (the service changes nothing it refuses)."""
    login = _login(request)
    try:
        message = await call()
    except PermissionDeniedError as exc:
        return _error(request, web.HTTPForbidden.status_code, f"refused by the serving service: {exc}")
    except UnauthenticatedError:
        raise
    except WeftClientError as exc:
        login.notices.append(("error", f"{action} refused: {exc}"))
        raise web.HTTPSeeOther(back) from None
    log.info("%s by %s: %s", action, login.user, message)
    login.notices.append(("ok", message))
    raise web.HTTPSeeOther(done)


async def _version(request: web.Request) -> int:
    text = str((await request.post()).get("version", "") or "0").strip()
    try:
        version = int(text)
    except ValueError:
        raise web.HTTPBadRequest(text=f"version: not a number ({text!r})") from None
    if version < 0:
        raise web.HTTPBadRequest(text=f"version: must not be negative ({version})")
    return version


async def model_publish(request: web.Request) -> web.StreamResponse:
    job_id, component = request.match_info["job_id"], request.match_info["component"]
    name = str((await request.post()).get("name", "")).strip()

    async def publish() -> str:
        model = await _login(request).serving.publish(job_id, component, name)
        return (f"published {model.name} version {model.version} ({model.module}, job {model.job_id} "
                f"{model.component}) at every member")

    return await _manage(request, "publish", publish, back=f"/jobs/{job_id}/models/{component}")


async def serving_rollback(request: web.Request) -> web.StreamResponse:
    name, version = request.match_info["name"], await _version(request)

    async def rollback() -> str:
        model = await _login(request).serving.rollback(name, version)
        return f"{model.name}: version {model.version} is current at every member"

    return await _manage(request, "rollback", rollback, back="/serving")


async def serving_unpublish(request: web.Request) -> web.StreamResponse:
    name, version = request.match_info["name"], await _version(request)

    async def unpublish() -> str:
        removed = await _login(request).serving.unpublish(name, version)
        what = f"version {version}" if version else "every version"
        return f"{name}: {what} unpublished at every member ({removed} here)"

    return await _manage(request, "unpublish", unpublish, back="/serving")


async def _served(request: web.Request) -> list[dict[str, Any]]:
    models = await _login(request).serving.list_models()
    return present.serving_view(models, request.app[SETTINGS].member_names)


async def serving_page(request: web.Request) -> web.Response:
    return _render("serving.html", request, {"models": await _served(request)})


async def serving_json(request: web.Request) -> web.Response:
    return web.json_response({"models": await _served(request)})


# -- data sets and members --------------------------------------------------------------
async def data_page(request: web.Request) -> web.Response:
    client = _client(request)
    rows = []
    for info in await client.data_sets(page_size=500):
        row = present.data_set_row(info)
        if info.label_column:
            summary = await client.data_set_summary(info.ref.namespace, info.ref.name)
            row["labels"] = present.label_balance(summary)
        rows.append(row)
    return _render("data.html", request, {"data_sets": rows})


async def members_page(request: web.Request) -> web.Response:
    members = await _client(request).members()
    return _render("members.html", request, {
        "me": present.members_view(members), "scheduler": request.app[SETTINGS].scheduler,
    })


# -- the application --------------------------------------------------------------------
def _filters(environment: jinja2.Environment) -> None:
    def when(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") if ms else ""

    def seconds(value: float | None) -> str:
        if value is None:
            return ""
        minutes, rest = divmod(int(value), 60)
        return f"{minutes}m {rest:02d}s" if minutes else f"{value:.1f}s"

    environment.filters["when"] = when
    environment.filters["seconds"] = seconds


async def _close_logins(app: web.Application) -> None:
    await app[STORE].close()


def create_app(config: MemberConfig, key: bytes) -> web.Application:
    """The board for the member `config` describes; `key` signs and encrypts its session cookie."""
    settings = BoardSettings(config)
    app = web.Application()
    setup_sessions(app, EncryptedCookieStorage(
        key, cookie_name=COOKIE_NAME, httponly=True, samesite="Strict", secure=settings.secure_cookie,
        max_age=int(settings.ttl_s),
    ))
    app.middlewares.append(require_login)
    environment = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True)
    _filters(environment)
    app[STORE] = LoginStore(settings.ttl_s)
    app[SETTINGS] = settings
    app.on_cleanup.append(_close_logins)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/", index)
    app.router.add_get("/jobs", jobs_page)
    app.router.add_get("/api/jobs", jobs_json)
    app.router.add_get("/jobs/{job_id}", job_page)
    app.router.add_get("/api/jobs/{job_id}", job_json)
    app.router.add_post("/jobs/{job_id}/stop", job_stop)
    app.router.add_post("/jobs/{job_id}/rerun", job_rerun)
    app.router.add_get("/jobs/{job_id}/tasks/{component}", task_page)
    app.router.add_get("/api/jobs/{job_id}/tasks/{component}", task_json)
    app.router.add_get("/api/jobs/{job_id}/tasks/{component}/events", task_events)
    app.router.add_get("/api/jobs/{job_id}/tasks/{component}/log", task_log)
    app.router.add_get("/jobs/{job_id}/models/{component}", model_page)
    app.router.add_post("/jobs/{job_id}/models/{component}/publish", model_publish)
    app.router.add_get("/serving", serving_page)
    app.router.add_get("/api/serving", serving_json)
    app.router.add_post("/serving/{name}/rollback", serving_rollback)
    app.router.add_post("/serving/{name}/unpublish", serving_unpublish)
    app.router.add_get("/curves", curves_page)
    app.router.add_get("/api/curves", curves_json)
    app.router.add_get("/data", data_page)
    app.router.add_get("/members", members_page)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
    return app
