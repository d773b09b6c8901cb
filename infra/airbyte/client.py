"""Airbyte API access: credentials, our own HTTP clients, retries with backoff, and redacted errors."""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import random
import re
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pydantic
from airbyte_api import AirbyteAPI, errors, models

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_SERVER_URL = "https://api.airbyte.com/v1"
# The same keys the Terraform-bridged Airbyte provider reads, so switching to it keeps the config.
CONFIG_SERVER_URL = "airbyte:serverUrl"
CONFIG_CLIENT_ID = "airbyte:clientId"
CONFIG_CLIENT_SECRET = "airbyte:clientSecret"
CONFIG_TOKEN = "airbyte:bearerAuth"

REDACTED = "[secret]"
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_TOKEN_STATUS = re.compile(r"Unexpected status code (\d+) from token endpoint")


@dataclass(frozen=True)
class ApiSettings:
    """Where and how to reach the Airbyte API; the credentials never appear in repr."""

    server_url: str = DEFAULT_SERVER_URL
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    timeout_s: float = 30.0
    max_attempts: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0

    @classmethod
    def from_config(cls, get: Callable[[str], Any], base: ApiSettings | None = None) -> ApiSettings:
        """Settings from Pulumi stack config keys (`airbyte:*`), keeping `base` for the rest."""
        base = base or cls()
        return cls(
            server_url=(get(CONFIG_SERVER_URL) or base.server_url).rstrip("/"),
            client_id=get(CONFIG_CLIENT_ID) or base.client_id,
            client_secret=get(CONFIG_CLIENT_SECRET) or base.client_secret,
            token=get(CONFIG_TOKEN) or base.token,
            timeout_s=base.timeout_s,
            max_attempts=base.max_attempts,
            backoff_base_s=base.backoff_base_s,
            backoff_max_s=base.backoff_max_s,
        )

    @property
    def credential_values(self) -> tuple[str, ...]:
        return tuple(v for v in (self.client_secret, self.token) if v)

    def security(self) -> models.Security:
        if self.token:
            return models.Security(bearer_auth=self.token)
        if self.client_id and self.client_secret:
            return models.Security(
                client_credentials=models.SchemeClientCredentials(
                    client_id=self.client_id,
                    client_secret=self.client_secret,
                    token_url=f"{self.server_url.rstrip('/')}/applications/token",
                )
            )
        raise AirbyteError(
            "Airbyte credentials are not set, so nothing was sent to Airbyte. Set either "
            f"`pulumi config set {CONFIG_CLIENT_ID} <id>` and "
            f"`pulumi config set --secret {CONFIG_CLIENT_SECRET} <secret>`, or "
            f"`pulumi config set --secret {CONFIG_TOKEN} <token>`, then run the command again."
        )


class AirbyteError(Exception):
    """A failed Airbyte operation; the message is already free of secret values."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AirbyteNotFound(AirbyteError):
    """The resource does not exist (any more) in Airbyte."""


class Redactor:
    """Replaces every known secret value (and each long line of a multi-line key) in text."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        needles: set[str] = set()
        for raw in secrets:
            if not raw or len(raw) < 4:
                continue
            needles.add(raw)
            # Error bodies quote what was sent, JSON-escaped: newlines become \n.
            needles.add(json.dumps(raw)[1:-1])
            for line in raw.splitlines():
                if len(line.strip()) >= 12:
                    needles.add(line.strip())
        # Longest first, so a whole key is replaced before its lines are.
        self._needles = sorted(needles, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for needle in self._needles:
            text = text.replace(needle, REDACTED)
        return text


def airbyte_message(body: str) -> str:
    """The human part of an Airbyte error body (`detail`, `data.message`), or the body itself."""
    try:
        doc = json.loads(body)
    except (TypeError, ValueError):
        return body.strip()[:500] or "(empty response)"
    if not isinstance(doc, dict):
        return str(doc)[:500]
    parts: list[str] = []
    for key in ("title", "detail", "message"):
        value = doc.get(key)
        if isinstance(value, str) and value and value not in parts:
            parts.append(value)
    data = doc.get("data")
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        parts.append(data["message"])
    return ": ".join(parts) if parts else json.dumps(doc)[:500]


def _retry_after_s(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    header = response.headers.get("retry-after")
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(header)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle costs tens of milliseconds; every provider call would pay it twice.
    return httpx.create_ssl_context()


class AirbyteClient:
    """One SDK client over HTTP clients we own, closed by us, never by the SDK's finalizer."""

    def __init__(self, settings: ApiSettings, secrets: Iterable[str | None] = ()) -> None:
        self.settings = settings
        self.redact = Redactor([*secrets, *settings.credential_values])
        timeout = httpx.Timeout(settings.timeout_s)
        tls = _tls_context()
        # Passing both clients stops the SDK from creating (and later asyncio.run-closing) its own.
        self._http = httpx.Client(follow_redirects=True, timeout=timeout, verify=tls)
        self._ahttp = httpx.AsyncClient(follow_redirects=True, timeout=timeout, verify=tls)
        self.sdk = AirbyteAPI(
            security=settings.security(),
            server_url=settings.server_url,
            client=self._http,
            async_client=self._ahttp,
            timeout_ms=int(settings.timeout_s * 1000),
        )

    def __enter__(self) -> AirbyteClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def call(
        self,
        action: str,
        fn: Callable[[], T],
        *,
        before_retry: Callable[[], T | None] | None = None,
    ) -> T:
        """Run `fn`, retrying 429, 5xx, timeouts and dropped connections with backoff.

        `before_retry` runs before each new attempt; a non-None result ends the call (a create
        that timed out may have succeeded, so it looks the resource up first).
        """
        s = self.settings
        last = ""
        # The SDK drops a cached OAuth token on 401; one more try fetches a fresh one.
        token_retry = not s.token
        for attempt in range(1, s.max_attempts + 1):
            response: httpx.Response | None = None
            try:
                if attempt > 1 and before_retry is not None:
                    found = before_retry()
                    if found is not None:
                        return found
                return fn()
            except errors.SDKError as exc:
                status = exc.status_code
                message = self.redact(airbyte_message(exc.body))
                if status == 404:
                    raise AirbyteNotFound(
                        f"{action}: not found in Airbyte ({message})", 404
                    ) from None
                if status == 401 and token_retry:
                    token_retry, last = False, f"HTTP 401: {message}"
                    continue
                if status not in _RETRYABLE_STATUS and status < 500:
                    raise AirbyteError(
                        self._client_error(action, status, message), status
                    ) from None
                response, last = exc.raw_response, f"HTTP {status}: {message}"
            except errors.ResponseValidationError as exc:
                raise AirbyteError(
                    f"{action}: Airbyte answered HTTP {exc.status_code} with a body this SDK "
                    f"version cannot read ({self._describe(exc.cause)}). The change may "
                    "have been applied; run `pulumi refresh` to see the live state."
                ) from None
            except pydantic.ValidationError as exc:
                raise AirbyteError(
                    f"{action}: the declared values do not fit Airbyte's model "
                    f"({self._describe(exc)}). Nothing was sent. Fix them in the program or "
                    "stack config."
                ) from None
            except httpx.TimeoutException:
                last = f"no answer within {s.timeout_s:g}s"
            except httpx.TransportError as exc:
                last = f"connection failed ({type(exc).__name__})"
            except (AirbyteError, KeyboardInterrupt):
                raise
            except Exception as exc:
                # The SDK's OAuth hook raises a bare Exception when the token request fails.
                token_error = _TOKEN_STATUS.search(str(exc))
                if token_error is None:
                    raise AirbyteError(
                        f"{action}: {type(exc).__name__}: {self._describe(exc)}"
                    ) from None
                status = int(token_error.group(1))
                if status not in _RETRYABLE_STATUS:
                    raise AirbyteError(
                        f"{action}: Airbyte refused the API credentials (HTTP {status} from the "
                        f"token endpoint). Nothing was changed. Check {CONFIG_CLIENT_ID} and "
                        f"{CONFIG_CLIENT_SECRET} in the stack config.",
                        status,
                    ) from None
                last = f"token endpoint answered HTTP {status}"
            if attempt == s.max_attempts:
                break
            delay = _retry_after_s(response)
            if delay is None:
                delay = s.backoff_base_s * 2 ** (attempt - 1) * (1 + random.random() / 4)
            delay = min(delay, s.backoff_max_s)
            log.info(
                "%s: %s; attempt %d of %d in %.2fs",
                action,
                last,
                attempt + 1,
                s.max_attempts,
                delay,
            )
            time.sleep(delay)
        raise AirbyteError(
            f"{action}: Airbyte is unavailable after {s.max_attempts} attempts (last: {last}). "
            "Nothing in the Pulumi state changed; run `pulumi up` again later — a create that "
            "did reach Airbyte is found by name instead of being duplicated."
        )

    def _describe(self, exc: BaseException | None) -> str:
        """An error's text without secret values; validation errors without their inputs."""
        if isinstance(exc, pydantic.ValidationError):
            text = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors(include_input=False, include_url=False)
            )
        else:
            text = str(exc)
        return self.redact(text)[:500]

    @staticmethod
    def _client_error(action: str, status: int, message: str) -> str:
        if status in (401, 403):
            hint = (
                f"Check {CONFIG_CLIENT_ID}/{CONFIG_CLIENT_SECRET} (or {CONFIG_TOKEN}) and that "
                "the application can access the workspace."
            )
        else:
            hint = "Fix the value in the stack config or program, then run `pulumi up` again."
        return f"{action}: Airbyte rejected the request (HTTP {status}): {message}. Nothing was changed. {hint}"
