"""The `weft` command: a local federation, jobs, data sets, results and the services themselves."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from kernel.errors import WeftError
from services.client import sdk
from services.client.sdk import SchedulerClient, WeftClientError

DEFAULT_DATA_DIR = "weft-data"
ENV_DATA_DIR = "WEFT_HOME"
ENV_SCHEDULER = "WEFT_SCHEDULER"
ENV_SERVING = "WEFT_SERVING"
ENV_TOKEN = sdk.ENV_TOKEN
#: How often `weft logs --follow` asks for new lines.
LOG_POLL_S = 1.0


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir or os.environ.get(ENV_DATA_DIR) or DEFAULT_DATA_DIR)


def _endpoint(args: argparse.Namespace) -> str:
    """--scheduler, else WEFT_SCHEDULER, else the chosen member of the local federation."""
    if args.scheduler:
        return str(args.scheduler)
    if os.environ.get(ENV_SCHEDULER):
        return os.environ[ENV_SCHEDULER]
    from services.client.standalone import load_state

    state = load_state(_data_dir(args))
    if state is None:
        raise CliError("no scheduler given: pass --scheduler HOST:PORT, set WEFT_SCHEDULER, "
                       "or start a local federation with 'weft standalone up'")
    return state.member(getattr(args, "member", None)).scheduler_endpoint


def _token(args: argparse.Namespace) -> str | None:
    """--token, else WEFT_TOKEN, else the admin token of the chosen local federation member.

    The local federation's token is used only when the endpoint is that member's too
    (no --scheduler or WEFT_SCHEDULER pointing elsewhere).
    """
    if args.token:
        return str(args.token)
    if os.environ.get(ENV_TOKEN):
        return os.environ[ENV_TOKEN]
    if args.scheduler or os.environ.get(ENV_SCHEDULER):
        return None
    from services.client.standalone import load_state

    state = load_state(_data_dir(args))
    if state is None:
        return None
    return state.member(getattr(args, "member", None)).admin_token()


def _client(args: argparse.Namespace) -> SchedulerClient:
    return SchedulerClient(_endpoint(args), timeout=args.timeout, token=_token(args))


def _serving_client(args: argparse.Namespace) -> sdk.ServingClient:
    """--serving, else WEFT_SERVING, else the chosen member of the local federation (with its admin token)."""
    endpoint = args.serving or os.environ.get(ENV_SERVING)
    token = args.token or os.environ.get(ENV_TOKEN)
    if not endpoint:
        from services.client.standalone import load_state

        state = load_state(_data_dir(args))
        if state is None:
            raise CliError("no serving service given: pass --serving HOST:PORT, set WEFT_SERVING, "
                           "or start a local federation with 'weft standalone up'")
        member = state.member(getattr(args, "member", None))
        endpoint = member.serving_endpoint
        token = token or member.admin_token()
    return sdk.ServingClient(str(endpoint), timeout=args.timeout, token=token)


def _model_rows(models: list[Any]) -> list[dict[str, Any]]:
    return [{"name": m.name, "version": m.version, "current": "*" if m.current else "", "module": m.module,
             "role": m.role, "job": m.job_id, "component": m.component, "chain": " > ".join(m.chain) or "-",
             "features": m.feature_table or "-", "published": _when(m.published_ms)} for m in models]


_MODEL_COLUMNS = ["name", "version", "current", "module", "role", "job", "component", "chain", "features", "published"]


def cmd_model(args: argparse.Namespace) -> int:
    """Published serving models: publish, list, rollback, unpublish, features, predict."""
    with _serving_client(args) as client:
        if args.action == "publish":
            if len(args.target) != 2:
                raise CliError("model publish: give JOB_ID and COMPONENT")
            model = client.publish(args.target[0], args.target[1], args.name or "", args.deadline_ms,
                                   args.fallback_score)
            print(f"published {model.name} version {model.version} ({model.module}, job {model.job_id} "
                  f"{model.component}; chain: {' > '.join(model.chain) or 'none'}) at every member")
            return 0
        if args.action == "list":
            _print_table(_MODEL_COLUMNS, _model_rows(client.list_models(args.target[0] if args.target else "")))
            return 0
        if not args.target:
            raise CliError(f"model {args.action}: give the model's NAME")
        name = args.target[0]
        if args.action == "rollback":
            model = client.rollback(name, args.version)
            print(f"{model.name}: version {model.version} is current at every member")
        elif args.action == "unpublish":
            removed = client.unpublish(name, args.version)
            what = f"version {args.version}" if args.version else "every version"
            print(f"{name}: {what} unpublished at every member ({removed} here)")
        elif args.action == "features":
            if len(args.target) != 2:
                raise CliError("model features: give NAME and NAMESPACE/NAME of the feature table")
            model = client.set_feature_table(name, args.target[1])
            print(f"{model.name}: ids are looked up in {model.feature_table}")
        else:
            if len(args.target) != 2:
                raise CliError("model predict: give NAME and ID")
            features = {}
            for item in args.feature or []:
                key, sep, value = item.partition("=")
                try:
                    features[key] = float(value)
                except ValueError:
                    raise CliError(f"--feature {item!r}: expected NAME=NUMBER") from None
                if not sep:
                    raise CliError(f"--feature {item!r}: expected NAME=NUMBER")
            answer = client.predict(name, args.target[1], features, args.version)
            print(json.dumps({"model": answer.model_name, "version": answer.model_version, "id": answer.id,
                              "score": answer.score, "label": answer.label,
                              **({"card_score": answer.card_score, "base_points": answer.base_points,
                                  "points": dict(answer.points), "provider_points": dict(answer.provider_points)}
                                 if answer.HasField("card_score") else {}),
                              **({"fallback": answer.fallback_reason} if answer.fallback else {})}))
    return 0


def _read_spec(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read job file {path}: {exc.strerror or exc}") from None
    try:
        spec = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise CliError(f"job file {path} is not valid {'JSON' if path.endswith('.json') else 'YAML'}: "
                       f"{str(exc).splitlines()[0]}") from None
    if not isinstance(spec, dict):
        raise CliError(f"job file {path}: expected an object at the top level")
    return spec


# -- commands -------------------------------------------------------------------------------
def cmd_standalone(args: argparse.Namespace) -> int:
    from services.client import standalone

    data_dir = _data_dir(args)
    state = standalone.load_state(data_dir)
    if args.action == "up":
        if state is None:
            state = standalone.create_federation(data_dir, args.members, args.arbiter, args.db, args.backend)
            print(f"created a {args.members}-member federation under {data_dir}")
        elif args.members != len(state.members) and args.members_given:
            raise CliError(f"{data_dir} holds a {len(state.members)}-member federation; "
                           f"remove it or use another --data-dir for {args.members}")
        standalone.start(state)
        print("federation is up; 'weft standalone down' stops it")
        return 0
    if state is None:
        raise CliError(f"no local federation under {data_dir}; start one with 'weft standalone up'")
    if args.action == "down":
        stopped = standalone.stop(state)
        print(f"stopped {len(stopped)} service(s)" if stopped else "nothing was running")
        return 0
    rows = standalone.status(state)
    _print_table(["member", "roles", "member_id", "service", "endpoint", "pid", "state"], rows)
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    with _client(args) as client:
        info = client.upload(args.file, args.namespace, args.name, args.id_column, args.label_column,
                             args.format, args.overwrite)
    print(f"uploaded {info.ref.namespace}/{info.ref.name}: {info.row_count} rows, {info.column_count} columns")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    spec = _read_spec(args.job_file)
    with _client(args) as client:
        job_id = client.submit(spec)
        print(f"job id: {job_id}", flush=True)
        if args.watch:
            return _watch(client, job_id)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    with _client(args) as client:
        return _watch(client, args.job_id)


def _watch(client: SchedulerClient, job_id: str) -> int:
    from services.client.render import JobView

    view = JobView(job_id)
    with view:
        for event in client.watch(job_id):
            view.update(event)
            if view.finished:
                break
    final = client.get(job_id)
    print(f"job {job_id}: {sdk.job_status_name(final.status)}" + (f" - {final.message}" if final.message else ""))
    return 0 if final.status == sdk.common_pb2.JOB_STATUS_SUCCESS else 1


def cmd_jobs(args: argparse.Namespace) -> int:
    with _client(args) as client:
        response = client.list_jobs(page_size=args.limit)
    rows = [{"job_id": j.job_id, "name": j.name, "status": sdk.job_status_name(j.status),
             "progress": f"{j.progress:.0f}%", "roles": ",".join(j.my_roles),
             "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.created_at_ms / 1000))}
            for j in response.jobs]
    _print_table(["job_id", "name", "status", "progress", "roles", "created"], rows)
    return 0


def cmd_job(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.get(args.job_id)
    print(f"job {job.job_id} ({job.name}): {sdk.job_status_name(job.status)} {job.progress:.0f}%")
    if job.message:
        print(f"  {job.message}")
    rows = [{"component": t.key.component_name, "role": t.key.party.role, "member": t.key.party.member_id[:8],
             "status": sdk.task_status_name(t.status), "progress": f"{t.progress:.0f}%", "error": t.error}
            for t in job.tasks]
    _print_table(["component", "role", "member", "status", "progress", "error"], rows)
    for t in job.tasks:
        if t.waiting:
            print(f"{t.key.component_name} ({t.key.party.role} {t.key.party.member_id[:8]}): {t.waiting}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    with _client(args) as client:
        status = client.stop(args.job_id, args.reason)
    print(f"job {args.job_id}: {sdk.job_status_name(status)}")
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    with _client(args) as client:
        components = client.rerun(args.job_id, args.component)
    print(f"job {args.job_id}: rerunning {', '.join(components)}")
    return 0


def cmd_result(args: argparse.Namespace) -> int:
    from services.client.render import plot_curves, print_results

    with _client(args) as client:
        results = client.results(args.job_id, args.component or "")
    if not results:
        raise CliError(f"job {args.job_id} has no results" + (f" for {args.component}" if args.component else ""))
    print_results(results)
    if args.plot:
        for path in plot_curves(results, Path(args.plot)):
            print(f"wrote {path}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    """`weft logs JOB_ID TASK`: the task's log at this member; with --follow, until the task ends."""
    offset = 0
    with _client(args) as client:
        while True:
            chunk = client.task_log(args.job_id, args.task, offset=offset, role=args.role or "", stdout=args.stdout)
            if chunk.restarted:
                print("[the log was rotated: earlier lines were skipped]", file=sys.stderr)
            if chunk.text:
                sys.stdout.write(chunk.text)
                sys.stdout.flush()
            moved = chunk.next_offset != offset
            offset = chunk.next_offset
            if chunk.complete or (not args.follow and not moved):
                return 0
            if not moved:
                time.sleep(LOG_POLL_S)


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else ""


def cmd_users(args: argparse.Namespace) -> int:
    """`weft users add|list|revoke|token`: the member's users (role admin)."""
    with _client(args) as client:
        if args.action == "list":
            rows = [{"name": u.name, "role": u.role, "tokens": u.active_tokens, "created": _when(u.created_at_ms),
                     "created_by": u.created_by, "revoked": _when(u.revoked_at_ms)} for u in client.users()]
            _print_table(["name", "role", "tokens", "created", "created_by", "revoked"], rows)
            return 0
        if args.action == "revoke" and args.token_id:
            client.revoke_token(args.token_id)
            print(f"token {args.token_id} revoked")
            return 0
        if not args.name:
            raise CliError(f"users {args.action}: give the user's name")
        if args.action == "add":
            if not args.role:
                raise CliError("users add: --role is required (admin, operator or viewer)")
            token = client.add_user(args.name, args.role, args.ttl_days, args.no_expiry).token
        elif args.action == "token":
            token = client.issue_token(args.name, args.ttl_days, args.no_expiry)
        else:
            revoked = client.revoke_user(args.name)
            print(f"user {args.name} revoked" + (f" with token(s) {', '.join(revoked)}" if revoked else ""))
            return 0
    expiry = f"expires {_when(token.expires_at_ms)}" if token.expires_at_ms else "does not expire"
    print(f"API token of {args.name} (id {token.token_id}, {expiry}); it is shown only now:", file=sys.stderr)
    print(token.token)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    with _client(args) as client:
        entries = client.audit(args.limit)
    rows = [{"when": _when(e.at_ms), "user": e.user, "via": f"{e.via} {e.credential_id}", "method": e.method,
             "target": e.target, "outcome": e.outcome} for e in entries]
    _print_table(["when", "user", "via", "method", "target", "outcome"], rows)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run one service in the foreground (the container entrypoint)."""
    from services.common.config import load_config

    load_config(args.config)  # refuse a bad config here, with the config loader's message
    command = [sys.executable, "-m", f"services.{args.service}", "--config", args.config]
    os.execv(sys.executable, command)
    return 0  # not reached: execv replaces this process


def cmd_certs(args: argparse.Namespace) -> int:
    from services.common.certs import create_ca, issue_member_cert, issue_user_cert

    if args.action == "init":
        create_ca(Path(args.dir))
        print(f"federation CA written to {args.dir}")
        return 0
    if args.action == "issue-user":
        if not args.name or not args.role:
            raise CliError("certs issue-user: give the user's name and --role")
        files = issue_user_cert(Path(args.ca_dir), args.name, args.role, Path(args.out))
        print(f"client certificate of {args.name} (role {args.role}) written to {files.cert_file} and {files.key_file}")
        return 0
    if not args.member_id:
        raise CliError("certs issue: --member-id is required")
    member = issue_member_cert(Path(args.ca_dir), args.member_id, args.host or ["127.0.0.1", "localhost"],
                              Path(args.out))
    print(f"certificate for {args.member_id} written to {member.cert_file} and {member.key_file}; its task "
          f"certificate (tls.task_cert_file, tls.task_key_file) to {member.task_cert_file} and {member.task_key_file}")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    """`weft deploy kubernetes init|render`: a member's overlay, secrets and manifests from its values file."""
    from services.deploy.kubernetes import DEFAULT_MANIFESTS, Overlay
    from services.deploy.values import load_values

    values = load_values(args.values)
    overlay = Overlay(values, Path(args.out or values.member.name),
                      Path(args.manifests) if args.manifests else DEFAULT_MANIFESTS)
    if args.action == "init":
        created = overlay.init(Path(args.ca_dir) if args.ca_dir else None, args.reissue_certificate)
        for item in created:
            print(f"created {item}")
        print(f"overlay of {values.member.name} written to {overlay.directory}; "
              f"next: weft deploy kubernetes render --values {args.values} --out {overlay.directory}")
        return 0
    manifests = overlay.render(args.kubectl)
    if args.output:
        Path(args.output).write_text(manifests, encoding="utf-8")
        print(f"manifests of {values.member.name} written to {args.output} "
              f"(kubectl apply -f {args.output}, or kubectl apply -k {overlay.directory})")
    else:
        sys.stdout.write(manifests)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from services.client.demo import run_demo

    return run_demo(_data_dir(args), keep=args.keep, backend=args.backend, timeout=args.timeout)


# -- output ---------------------------------------------------------------------------------
def _print_table(columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    Console(width=160).print(table)


# -- parser ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weft", description="Weft: federated learning where raw rows stay home.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--scheduler", help="scheduler endpoint HOST:PORT (default: WEFT_SCHEDULER or the local federation)")
    parser.add_argument("--member", help="local federation member (name, id or index) to talk to")
    parser.add_argument("--data-dir", help=f"local federation directory (default: {ENV_DATA_DIR} or ./{DEFAULT_DATA_DIR})")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per call")
    parser.add_argument("--token", help=f"API token weft_<id>.<secret> (default: {ENV_TOKEN} or the local "
                                        "federation member's admin token)")
    commands = parser.add_subparsers(dest="command", required=True)

    standalone = commands.add_parser("standalone", help="a whole federation on this machine")
    standalone.add_argument("action", choices=["up", "down", "status"])
    standalone.add_argument("--members", type=int, default=None, choices=[2, 3])
    standalone.add_argument("--arbiter", action="store_true", help="give the federation an arbiter")
    standalone.add_argument("--db", default="sqlite", help="sqlite or mysql://user@host:port")
    standalone.add_argument("--backend", choices=["local", "spark"], default="local")
    standalone.set_defaults(handler=cmd_standalone)

    demo = commands.add_parser("demo", help="two members train a vertical LR on bundled data")
    demo.add_argument("--keep", action="store_true", help="leave the members running")
    demo.add_argument("--backend", choices=["local", "spark"], default="local")
    demo.set_defaults(handler=cmd_demo)

    upload = commands.add_parser("upload", help="load a CSV or Parquet file into a member")
    upload.add_argument("file")
    upload.add_argument("--namespace", required=True)
    upload.add_argument("--name", required=True)
    upload.add_argument("--id-column", required=True)
    upload.add_argument("--label-column")
    upload.add_argument("--format", choices=["csv", "parquet"], default="csv")
    upload.add_argument("--overwrite", action="store_true")
    upload.set_defaults(handler=cmd_upload)

    submit = commands.add_parser("submit", help="submit a job spec (JSON or YAML)")
    submit.add_argument("job_file")
    submit.add_argument("--watch", action="store_true", help="follow the job until it ends")
    submit.set_defaults(handler=cmd_submit)

    for name, handler, help_text in (("watch", cmd_watch, "follow a job live"), ("job", cmd_job, "show one job")):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("job_id")
        sub.set_defaults(handler=handler)

    jobs = commands.add_parser("jobs", help="list jobs")
    jobs.add_argument("--limit", type=int, default=20)
    jobs.set_defaults(handler=cmd_jobs)

    stop = commands.add_parser("stop", help="stop a job at every member")
    stop.add_argument("job_id")
    stop.add_argument("--reason", default="stopped by user")
    stop.set_defaults(handler=cmd_stop)

    rerun = commands.add_parser("rerun", help="rerun failed (or named) components and what follows")
    rerun.add_argument("job_id")
    rerun.add_argument("--component", action="append", help="component to rerun (repeatable)")
    rerun.set_defaults(handler=cmd_rerun)

    result = commands.add_parser("result", help="metrics and outputs of a job")
    result.add_argument("job_id")
    result.add_argument("--component")
    result.add_argument("--plot", metavar="DIR", help="draw ROC, KS and loss curves as PNG files into DIR")
    result.set_defaults(handler=cmd_result)

    logs = commands.add_parser("logs", help="a task's log at this member (its standard error by default)")
    logs.add_argument("job_id")
    logs.add_argument("task", help="the component, e.g. vert_lr_0")
    logs.add_argument("--role", help="this member's role, when it holds several for the component")
    logs.add_argument("--stdout", action="store_true", help="the task's standard output instead")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until the task ends")
    logs.set_defaults(handler=cmd_logs)

    users = commands.add_parser("users", help="users of a member's client API (role admin)")
    users.add_argument("action", choices=["add", "list", "revoke", "token"],
                       help="add: a user and its first token; list; revoke: a user and its tokens "
                            "(or one token with --token-id); token: one more token of a user")
    users.add_argument("name", nargs="?")
    users.add_argument("--role", choices=["admin", "operator", "viewer"], help="add: the user's role")
    users.add_argument("--ttl-days", type=float, default=0.0,
                       help="add, token: the token's lifetime in days (default: the member's)")
    users.add_argument("--no-expiry", action="store_true", help="add, token: a token valid until revoked")
    users.add_argument("--token-id", help="revoke: one token by its id instead of a whole user")
    users.set_defaults(handler=cmd_users)

    audit = commands.add_parser("audit", help="the member's audit log: every change, who made it, its outcome")
    audit.add_argument("--limit", type=int, default=50)
    audit.set_defaults(handler=cmd_audit)

    model = commands.add_parser("model", help="online serving: publish a job's model, list, roll back, unpublish")
    model.add_argument("action", choices=["publish", "list", "rollback", "unpublish", "features", "predict"],
                       help="publish JOB_ID COMPONENT; list [NAME]; rollback NAME; unpublish NAME; "
                            "features NAME NAMESPACE/NAME (at a provider); predict NAME ID")
    model.add_argument("target", nargs="*", help="JOB_ID COMPONENT, or NAME [...]")
    model.add_argument("--name", help="publish: the serving model's name (default: the component's)")
    model.add_argument("--version", type=int, default=0,
                       help="rollback: the version to make current (default: the one before); unpublish: only "
                            "this version; predict: this version instead of the current one")
    model.add_argument("--deadline-ms", type=int, default=0,
                       help="publish: how long the promoter waits for each provider (default: the member's "
                            "serving.provider_deadline_ms)")
    model.add_argument("--fallback-score", type=float,
                       help="publish: the score answered (marked fallback) when a provider is down or late")
    model.add_argument("--feature", action="append", help="predict: a promoter feature NAME=NUMBER (repeatable)")
    model.add_argument("--serving", help="serving endpoint HOST:PORT (default: WEFT_SERVING or the local federation)")
    model.set_defaults(handler=cmd_model)

    serve = commands.add_parser("serve", help="run one service of a member in the foreground")
    serve.add_argument("service", choices=["scheduler", "executor", "transfer", "serving", "board"])
    serve.add_argument("--config", required=True, help="the member's YAML config")
    serve.set_defaults(handler=cmd_serve)

    certs = commands.add_parser("certs", help="federation CA and member certificates")
    certs.add_argument("action", choices=["init", "issue", "issue-user"],
                       help="init: a CA; issue: a member certificate; issue-user: a user's client certificate "
                            "for the scheduler's TLS listener (the user must exist: weft users add)")
    certs.add_argument("name", nargs="?", help="issue-user: the user's name (the certificate's CN)")
    certs.add_argument("--role", choices=["admin", "operator", "viewer"], help="issue-user: the role bound in it")
    certs.add_argument("--dir", default="ca", help="init: where the CA goes")
    certs.add_argument("--ca-dir", default="ca", help="issue: the CA directory")
    certs.add_argument("--member-id", help="issue: the member id (certificate CN)")
    certs.add_argument("--host", action="append", help="issue: host name or IP the member serves on")
    certs.add_argument("--out", default="tls", help="issue: where the certificate and key go")
    certs.set_defaults(handler=cmd_certs)

    deploy = commands.add_parser("deploy", help="deploy a member from its values file")
    deploy.add_argument("target", choices=["kubernetes"])
    deploy.add_argument("action", choices=["init", "render"],
                        help="init: write the overlay and its secrets (certificate, passwords); "
                             "render: rewrite the overlay and print the manifests")
    deploy.add_argument("--values", required=True, help="the member's values file (YAML)")
    deploy.add_argument("--out", help="the member's overlay directory (default: the member's name)")
    deploy.add_argument("--ca-dir", help="init: the federation CA that issues the member's certificate")
    deploy.add_argument("--reissue-certificate", action="store_true",
                        help="init: issue a new certificate even if one exists (rotation)")
    deploy.add_argument("--manifests", help="the release's deploy/k8s directory (default: beside the package)")
    deploy.add_argument("--output", "-o", help="render: write the manifests to this file instead of stdout")
    deploy.add_argument("--kubectl", default="kubectl", help="render: the kubectl to run kustomize with")
    deploy.set_defaults(handler=cmd_deploy)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "standalone":
        args.members_given = args.members is not None
        args.members = args.members or (3 if args.arbiter else 2)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (CliError, WeftError, WeftClientError) as exc:
        if args.debug:
            raise
        print(f"weft: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("weft: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"weft: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

