"""A fake Airbyte API on 127.0.0.1: the endpoints the Pulumi provider and Airflow use, with strict bodies."""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

MASK = "**********"
POSTGRES_DEFINITION = "decd338e-5647-4c0b-adf4-da0e75f5a750"
SNOWFLAKE_DEFINITION = "424892c4-daac-4491-b35d-c6688ba547ba"
SYNC_MODES = {
    "full_refresh_overwrite",
    "full_refresh_append",
    "incremental_append",
    "incremental_deduped_history",
}
_TZ = re.compile(r"^[A-Za-z_]+(/[A-Za-z_+\-0-9]+)*$")


@dataclass
class Fault:
    """Answer matching requests with `status` (after applying them when `apply_first`)."""

    method: str
    path: re.Pattern[str]
    status: int
    times: int = 1
    retry_after: str | None = None
    apply_first: bool = False
    stall_s: float = 0.0
    echo_body: bool = False
    skip: int = 0
    # With status 200: answer normally but leave this field out of the body.
    omit: str | None = None


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    raw: str
    headers: dict[str, str]


@dataclass
class Job:
    """One job of a connection; `answered` lists the statuses its status requests were given."""

    job_id: int
    connection_id: str
    job_type: str
    start_time: str
    done: threading.Event = field(default_factory=threading.Event)
    status: str = "running"
    error: str | None = None
    rows_synced: int | None = None
    answered: list[str] = field(default_factory=list)

    def view(self, status: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "jobId": self.job_id,
            "status": status,
            "jobType": self.job_type,
            "startTime": self.start_time,
            "connectionId": self.connection_id,
            "lastUpdatedAt": _now(),
        }
        if self.rows_synced is not None:
            out["rowsSynced"] = self.rows_synced
        return out


# What a sync job does when it runs: moves the connection's data and returns the rows synced.
# An exception fails the job with its message. A job that fails midway (`failing_midway`)
# calls it with `partial=True`: it moves only part of the data, then the job fails.
SyncRunner = Callable[..., int | None]


class ApiError(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


@dataclass
class FakeAirbyte:
    """State and behaviour of the fake; `url` is the server URL to give the SDK."""

    client_id: str = "fake-client-id"
    client_secret: str = "fake-client-secret-0123456789"
    workspace_id: str = "11111111-2222-3333-4444-555555555555"
    # What a discover of the `app` schema finds.
    tables: tuple[str, ...] = (
        "plans",
        "users",
        "banks",
        "credit_cards",
        "subscriptions",
        "payments",
    )
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    destinations: dict[str, dict[str, Any]] = field(default_factory=dict)
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    page_size_cap: int = 100
    jobs: dict[int, Job] = field(default_factory=dict)
    # Runs each sync job's data movement; None: jobs succeed without moving anything.
    sync: SyncRunner | None = None
    # Messages of the next jobs to fail, one per job, before they move any data.
    failing_jobs: list[str] = field(default_factory=list)
    # Messages of the next jobs to fail after they moved part of the data (a real sync can
    # fail halfway: a destination keeps what it committed before the failure).
    failing_midway: list[str] = field(default_factory=list)
    # Status requests each job answers `queued` first (a capacity-based plan with no worker free).
    queued_polls: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def _serve(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> FakeAirbyte:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    # -- test controls ------------------------------------------------------------------------
    def fail(self, method: str, path: str, status: int, **kw: Any) -> Fault:
        fault = Fault(method, re.compile(path), status, **kw)
        self.faults.append(fault)
        return fault

    def requests(self, method: str, path: str = "") -> list[Seen]:
        return [s for s in self.seen if s.method == method and re.fullmatch(path or ".*", s.path)]

    def add_connection(
        self,
        name: str = "mdp-dev-postgres-to-snowflake",
        connection_id: str | None = None,
        source: dict[str, Any] | None = None,
        destination: dict[str, Any] | None = None,
    ) -> str:
        """A connection as the stack creates it (source and destination included); its id.

        `connection_id`, `source` and `destination` (their configurations) default to a new id
        and the bare minimum the sync job reads.
        """
        source_id, destination_id = (str(uuid.uuid4()) for _ in range(2))
        connection_id = connection_id or str(uuid.uuid4())
        common = {"workspaceId": self.workspace_id, "createdAt": int(time.time())}
        self.sources[source_id] = common | {
            "sourceId": source_id,
            "name": name.replace("-to-snowflake", ""),
            "sourceType": "postgres",
            "definitionId": POSTGRES_DEFINITION,
            "configuration": {"sourceType": "postgres"} | (source or {}),
        }
        self.destinations[destination_id] = common | {
            "destinationId": destination_id,
            "name": name.replace("postgres-to-", ""),
            "destinationType": "snowflake",
            "definitionId": SNOWFLAKE_DEFINITION,
            "configuration": {
                "destinationType": "snowflake",
                "schema": "POSTGRES_AIRBYTE",
                "raw_data_schema": "POSTGRES_AIRBYTE",
            }
            | (destination or {}),
        }
        self.connections[connection_id] = common | {
            "connectionId": connection_id,
            "sourceId": source_id,
            "destinationId": destination_id,
            "name": name,
            "status": "active",
            "schedule": {"scheduleType": "manual"},
            "namespaceDefinition": "custom_format",
            "namespaceFormat": "POSTGRES_AIRBYTE",
            "configurations": {"streams": []},
        }
        return connection_id

    def edit(self, collection: str, id_: str, **changes: Any) -> None:
        """Change a stored resource the way a user does in the Airbyte UI."""
        store = getattr(self, collection)[id_]
        for key, value in changes.items():
            node = store
            *parents, leaf = key.split(".")
            for p in parents:
                node = node[p]
            node[leaf] = value

    # -- HTTP ---------------------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        parsed = urlparse(h.path)
        length = int(h.headers.get("content-length") or 0)
        raw = h.rfile.read(length).decode() if length else ""
        ctype = h.headers.get("content-type") or ""
        body: Any = None
        if raw and "json" in ctype:
            body = json.loads(raw)
        elif raw:
            body = {k: v[0] for k, v in parse_qs(raw).items()}
        seen = Seen(h.command, parsed.path, parse_qs(parsed.query), body, raw, dict(h.headers))
        with self._lock:
            self.seen.append(seen)
            fault = self._fault(seen)
        status, payload, headers = 200, None, {}
        try:
            if fault is not None and not fault.apply_first and fault.omit is None:
                raise ApiError(fault.status, "fault", self._fault_message(fault, raw))
            with self._lock:
                status, payload = self._route(seen)
            if fault is not None and fault.omit is not None:
                payload = {k: v for k, v in payload.items() if k != fault.omit}
            elif fault is not None:
                time.sleep(fault.stall_s)
                raise ApiError(fault.status, "fault", self._fault_message(fault, raw))
        except ApiError as e:
            status = e.status
            payload = {
                "type": "https://reference.airbyte.com/reference/errors",
                "title": e.title,
                "status": e.status,
                "detail": e.message,
            }
            if fault is not None and fault.retry_after is not None:
                headers["Retry-After"] = fault.retry_after
        try:
            h.send_response(status)
            for k, v in headers.items():
                h.send_header(k, v)
            if payload is None:
                h.send_header("content-length", "0")
                h.end_headers()
                return
            data = json.dumps(payload).encode()
            h.send_header("content-type", "application/json")
            h.send_header("content-length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a stalled fault)

    def _fault(self, seen: Seen) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.method == seen.method and fault.path.fullmatch(seen.path):
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                fault.times -= 1
                return fault
        return None

    @staticmethod
    def _fault_message(fault: Fault, raw: str) -> str:
        if fault.echo_body:
            # Airbyte's validation errors quote the submitted configuration.
            return f"The provided configuration does not fulfill the specification: {raw}"
        return {429: "Rate limit exceeded", 500: "Internal Server Error: database timeout"}.get(
            fault.status, f"fault {fault.status}"
        )

    def _route(self, s: Seen) -> tuple[int, Any]:
        path = s.path.removeprefix("/v1")
        if s.method == "POST" and path == "/applications/token":
            return self._token(s.body or {})
        auth = s.headers.get("Authorization") or s.headers.get("authorization") or ""
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self.tokens:
            raise ApiError(401, "unauthorized", "Missing or invalid bearer token")
        parts = [p for p in path.split("/") if p]
        if parts and parts[0] == "jobs":
            return self._jobs(s, parts[1:])
        if not parts or parts[0] not in ("sources", "destinations", "connections"):
            raise ApiError(404, "not-found", f"no route {s.method} {s.path}")
        collection = parts[0]
        if len(parts) == 1:
            if s.method == "GET":
                return 200, self._list(collection, s.query)
            if s.method == "POST":
                return 200, self._create(collection, s.body)
        elif len(parts) == 2:
            id_ = parts[1]
            store = getattr(self, collection)
            if id_ not in store or store[id_].get("_deleted"):
                if collection == "connections" and id_ in store and s.method == "GET":
                    return 200, self._view(collection, store[id_])
                raise ApiError(404, "resource-not-found", f"Could not find a resource for: {id_}")
            if s.method == "GET":
                return 200, self._view(collection, store[id_])
            if s.method == "PATCH":
                return 200, self._patch(collection, id_, s.body)
            if s.method == "DELETE":
                self._delete(collection, id_)
                return 204, None
        raise ApiError(405, "method-not-allowed", f"{s.method} {s.path}")

    # -- jobs ---------------------------------------------------------------------------------
    def _jobs(self, s: Seen, rest: list[str]) -> tuple[int, Any]:
        if not rest and s.method == "POST":
            return 200, self._create_job(s.body)
        if len(rest) == 1:
            job = self.jobs.get(int(rest[0])) if rest[0].isdigit() else None
            if job is None:
                raise ApiError(404, "resource-not-found", f"Could not find a job with id {rest[0]}")
            if s.method == "GET":
                return 200, job.view(self._answer(job))
            if s.method == "DELETE":
                if not job.done.is_set():
                    job.status, job.error = "cancelled", "cancelled by the API"
                    job.done.set()
                return 200, job.view(job.status)
        raise ApiError(405, "method-not-allowed", f"{s.method} {s.path}")

    def _create_job(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "bad-request", "a JSON object body is required")
        connection_id, job_type = body.get("connectionId"), body.get("jobType")
        if job_type not in ("sync", "reset"):
            raise ApiError(400, "bad-request", f"jobType {job_type!r} is invalid")
        connection = self.connections.get(connection_id or "")
        if connection is None or connection.get("_deleted"):
            raise ApiError(
                404, "resource-not-found", f"Could not find a connection {connection_id}"
            )
        if connection.get("status") != "active":
            raise ApiError(400, "bad-request", f"connection {connection_id} is not active")
        if any(
            j.connection_id == connection_id and not j.done.is_set() for j in self.jobs.values()
        ):
            raise ApiError(409, "conflict", f"A sync is already running for: {connection_id}")
        job = Job(len(self.jobs) + 1, str(connection_id), job_type, _now())
        self.jobs[job.job_id] = job
        failure = self.failing_jobs.pop(0) if self.failing_jobs else None
        if job_type == "sync":
            failure = failure or _first_sync_failure(self.destinations[connection["destinationId"]])
        midway = None if failure or not self.failing_midway else self.failing_midway.pop(0)
        threading.Thread(
            target=self._run_job,
            args=(job, copy.deepcopy(connection), failure, midway),
            daemon=True,
        ).start()
        return job.view("running")

    def _run_job(
        self,
        job: Job,
        connection: dict[str, Any],
        failure: str | None,
        midway: str | None = None,
    ) -> None:
        try:
            if failure is not None:
                raise RuntimeError(failure)
            if self.sync is not None and job.job_type == "sync":
                if midway is not None:
                    job.rows_synced = self.sync(connection, partial=True)
                    raise RuntimeError(midway)
                job.rows_synced = self.sync(connection)
            job.status = "succeeded"
        except Exception as exc:
            job.status, job.error = "failed", str(exc)
        finally:
            job.done.set()

    def _answer(self, job: Job) -> str:
        """The job's status; a real sync takes minutes, so every job is seen `running` once."""
        if job.answered.count("queued") < self.queued_polls:
            status = "queued"
        elif job.done.is_set() and "running" in job.answered:
            status = job.status
        else:
            status = "running"
        job.answered.append(status)
        return status

    # -- behaviour ----------------------------------------------------------------------------
    def _token(self, form: dict[str, str]) -> tuple[int, Any]:
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            raise ApiError(401, "unauthorized", "invalid client credentials")
        token = uuid.uuid4().hex
        self.tokens.add(token)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 180}

    def _list(self, collection: str, query: dict[str, list[str]]) -> dict[str, Any]:
        workspaces = set(query.get("workspaceIds", []))
        limit = min(int(query.get("limit", ["20"])[0]), self.page_size_cap)
        offset = int(query.get("offset", ["0"])[0])
        items = [
            self._view(collection, r)
            for r in getattr(self, collection).values()
            if not r.get("_deleted") and (not workspaces or r["workspaceId"] in workspaces)
        ]
        page = items[offset : offset + limit]
        out: dict[str, Any] = {"data": page}
        if offset + limit < len(items):
            out["next"] = f"{self.url}/{collection}?limit={limit}&offset={offset + limit}"
        return out

    def _create(self, collection: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "bad-request", "a JSON object body is required")
        if collection == "connections":
            record = self._check_connection(body, None)
            record["connectionId"] = str(uuid.uuid4())
        else:
            record = self._check_actor(collection, body)
            record[f"{collection[:-1]}Id"] = str(uuid.uuid4())
        record["createdAt"] = int(time.time())
        getattr(self, collection)[record[_id_key(collection)]] = record
        return self._view(collection, record)

    def _patch(self, collection: str, id_: str, body: Any) -> dict[str, Any]:
        current = getattr(self, collection)[id_]
        if collection == "connections":
            merged = self._check_connection(body, current)
        else:
            cfg = copy.deepcopy(body.get("configuration") or current["configuration"])
            _keep_masked(cfg, current["configuration"])
            merged = self._check_actor(
                collection,
                {
                    "name": body.get("name", current["name"]),
                    "workspaceId": current["workspaceId"],
                    "configuration": cfg,
                },
            )
        current.update(merged)
        return self._view(collection, current)

    def _delete(self, collection: str, id_: str) -> None:
        store = getattr(self, collection)
        if collection == "connections":
            store[id_]["status"] = "deprecated"
            store[id_]["_deleted"] = True
            return
        del store[id_]
        key = "sourceId" if collection == "sources" else "destinationId"
        for conn in self.connections.values():
            if conn[key] == id_:
                conn["status"], conn["_deleted"] = "deprecated", True

    def _check_actor(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        for key in ("name", "workspaceId", "configuration"):
            if not body.get(key):
                raise ApiError(400, "bad-request", f"required property '{key}' is missing")
        if body["workspaceId"] != self.workspace_id:
            raise ApiError(403, "forbidden", f"no access to workspace {body['workspaceId']}")
        cfg = body["configuration"]
        if collection == "sources":
            _check_postgres(cfg)
            kind = {"sourceType": "postgres", "definitionId": POSTGRES_DEFINITION}
        else:
            _check_snowflake(cfg)
            kind = {"destinationType": "snowflake", "definitionId": SNOWFLAKE_DEFINITION}
        return {
            "name": body["name"],
            "workspaceId": body["workspaceId"],
            "configuration": cfg,
        } | kind

    def _check_connection(self, body: Any, current: dict[str, Any] | None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "bad-request", "a JSON object body is required")
        rec = copy.deepcopy(current) if current else {}
        if current is None:
            for key in ("sourceId", "destinationId"):
                if not body.get(key):
                    raise ApiError(400, "bad-request", f"required property '{key}' is missing")
            source = self.sources.get(body["sourceId"])
            if source is None or body["destinationId"] not in self.destinations:
                raise ApiError(400, "bad-request", "unknown sourceId or destinationId")
            rec |= {
                "sourceId": body["sourceId"],
                "destinationId": body["destinationId"],
                "workspaceId": source["workspaceId"],
                "name": body.get("name") or "postgres → snowflake",
                "status": "active",
                "tags": [],
                "prefix": "",
                "namespaceDefinition": "destination",
                "nonBreakingSchemaUpdatesBehavior": "ignore",
                "schedule": {"scheduleType": "manual"},
                "configurations": {"streams": []},
            }
        elif "sourceId" in body or "destinationId" in body:
            raise ApiError(400, "bad-request", "sourceId and destinationId cannot be changed")
        for key in ("name", "status", "prefix", "namespaceDefinition", "namespaceFormat"):
            if key in body:
                rec[key] = body[key]
        if "nonBreakingSchemaUpdatesBehavior" in body:
            rec["nonBreakingSchemaUpdatesBehavior"] = body["nonBreakingSchemaUpdatesBehavior"]
        if "schedule" in body:
            rec["schedule"] = _check_schedule(body["schedule"])
        if "configurations" in body:
            rec["configurations"] = {"streams": self._check_streams(body["configurations"])}
        if rec.get("namespaceDefinition") == "custom_format" and not rec.get("namespaceFormat"):
            raise ApiError(400, "bad-request", "namespaceFormat is required for custom_format")
        return rec

    def _check_streams(self, configurations: Any) -> list[dict[str, Any]]:
        out = []
        for s in (configurations or {}).get("streams") or []:
            name = s.get("name")
            if name not in self.tables:
                raise ApiError(400, "bad-request", f"stream {name!r} is not in the source catalog")
            mode = s.get("syncMode")
            if mode not in SYNC_MODES:
                raise ApiError(400, "bad-request", f"stream {name}: sync mode {mode!r} is invalid")
            if mode == "incremental_deduped_history" and not s.get("primaryKey"):
                raise ApiError(
                    400, "bad-request", f"stream {name}: deduped sync needs a primary key"
                )
            if mode.startswith("incremental") and not s.get("cursorField"):
                raise ApiError(
                    400, "bad-request", f"stream {name}: incremental sync needs a cursor"
                )
            out.append(
                {
                    "name": name,
                    "syncMode": mode,
                    "cursorField": s.get("cursorField") or [],
                    "primaryKey": s.get("primaryKey") or [],
                }
            )
        return out

    def _view(self, collection: str, record: dict[str, Any]) -> dict[str, Any]:
        view = {k: copy.deepcopy(v) for k, v in record.items() if not k.startswith("_")}
        if "configuration" in view:
            _mask(view["configuration"])
        return view


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _id_key(collection: str) -> str:
    return f"{collection[:-1]}Id"


_SECRET_KEYS = {"password", "ssh_key", "private_key", "tunnel_user_password"}


def _mask(node: Any) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in _SECRET_KEYS and isinstance(v, str):
                node[k] = MASK
            else:
                _mask(v)


def _keep_masked(new: Any, old: Any) -> None:
    if isinstance(new, dict) and isinstance(old, dict):
        for k, v in new.items():
            if v == MASK and k in old:
                new[k] = old[k]
            else:
                _keep_masked(v, old.get(k))


def _require(cfg: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        if cfg.get(key) in (None, ""):
            raise ApiError(400, "bad-request", f"{where}: required property '{key}' is missing")


def _check_postgres(cfg: dict[str, Any]) -> None:
    if cfg.get("sourceType") != "postgres":
        raise ApiError(400, "bad-request", "configuration.sourceType must be 'postgres'")
    _require(cfg, ("host", "port", "database", "username", "password"), "configuration")
    if (cfg.get("ssl_mode") or {}).get("mode") not in {
        "disable",
        "allow",
        "prefer",
        "require",
        "verify-ca",
        "verify-full",
    }:
        raise ApiError(400, "bad-request", "configuration.ssl_mode.mode is invalid")
    method = cfg.get("replication_method") or {}
    if method.get("method") == "CDC":
        _require(method, ("publication", "replication_slot"), "replication_method")
    elif method.get("method") not in ("Standard", "Xmin"):
        raise ApiError(400, "bad-request", "configuration.replication_method.method is invalid")
    tunnel = cfg.get("tunnel_method") or {}
    if tunnel.get("tunnel_method") == "SSH_KEY_AUTH":
        _require(tunnel, ("tunnel_host", "tunnel_port", "tunnel_user", "ssh_key"), "tunnel_method")
    elif tunnel.get("tunnel_method") != "NO_TUNNEL":
        raise ApiError(400, "bad-request", "configuration.tunnel_method is invalid")


def _check_snowflake(cfg: dict[str, Any]) -> None:
    if cfg.get("destinationType") != "snowflake":
        raise ApiError(400, "bad-request", "configuration.destinationType must be 'snowflake'")
    _require(cfg, ("host", "role", "warehouse", "database", "schema", "username"), "configuration")
    creds = cfg.get("credentials") or {}
    if creds.get("auth_type") == "Key Pair Authentication":
        _require(creds, ("private_key",), "credentials")
    elif creds.get("auth_type") != "Username and Password":
        raise ApiError(400, "bad-request", "configuration.credentials.auth_type is invalid")


def _first_sync_failure(destination: dict[str, Any]) -> str | None:
    """How a sync into a destination without `raw_data_schema` fails in Airbyte Cloud.

    The connector then keeps its internal tables in "airbyte_internal" and runs
    CREATE SCHEMA IF NOT EXISTS for it; the service role may create tables in its one schema,
    never schemas. The connection check writes to the configured schema, so it passes.
    """
    cfg = destination.get("configuration") or {}
    if cfg.get("raw_data_schema"):
        return None
    database = cfg.get("database") or "RAW"
    return (
        "Failure in destination: SQL access control error: Insufficient privileges to operate "
        f"on database '{database}' (CREATE SCHEMA IF NOT EXISTS \"airbyte_internal\"; set "
        "raw_data_schema to the destination's schema)"
    )


def _check_schedule(schedule: Any) -> dict[str, Any]:
    kind = (schedule or {}).get("scheduleType")
    if kind == "manual":
        return {"scheduleType": "manual"}
    if kind != "cron":
        raise ApiError(400, "bad-request", f"scheduleType {kind!r} is invalid")
    expr = str(schedule.get("cronExpression") or "")
    fields = expr.split()
    tz = "UTC"
    # A 7th field is a year (digits) or a time-zone id; an 8th is always the zone.
    if len(fields) >= 7 and not re.fullmatch(r"[\d*,/?-]+", fields[-1]):
        tz = fields.pop()
        if not _TZ.match(tz):
            raise ApiError(
                400, "bad-request", f"The cron expression {expr} has an invalid time zone."
            )
    if len(fields) not in (6, 7):
        raise ApiError(
            400,
            "bad-request",
            f"The cron expression {expr} is not valid. Error: Cron expression contains "
            f"{len(fields)} parts but we expect one of [6, 7].",
        )
    if "*" in fields[0] or "*" in fields[1]:
        raise ApiError(
            400, "bad-request", f"The cron expression {expr} is less than the one hour minimum."
        )
    return {"scheduleType": "cron", "cronExpression": " ".join([*fields, tz])}
