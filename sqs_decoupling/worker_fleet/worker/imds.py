"""A minimal EC2 instance metadata (IMDSv2) client: token PUT, then GETs with the token."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request

DEFAULT_IMDS_URL = "http://169.254.169.254"
_TOKEN_TTL_SECONDS = 21600


class ImdsUnavailable(Exception):
    """No instance metadata service answered: the worker is not on EC2 (or IMDS is disabled)."""


class _TokenRejected(ImdsUnavailable):
    """HTTP 401: the session token is no longer valid."""


class Imds:
    """Reads instance metadata with IMDSv2 session tokens (the launch template requires v2).

    ``base_url`` is injectable so tests can serve metadata from a local HTTP server. The short timeout keeps
    start-up fast on premises, where nothing listens on the link-local address.
    """

    def __init__(self, base_url: str = DEFAULT_IMDS_URL, *, timeout_seconds: float = 1.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"the instance metadata URL must start with http:// or https://, got {base_url!r}")
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_expires = 0.0

    def get(self, path: str) -> str | None:
        """The metadata at ``/latest/meta-data/<path>``, or None if this instance has none (HTTP 404)."""
        try:
            return self._get(path, self._current_token())
        except _TokenRejected:  # the token expired early (e.g. IMDS restarted): get a new one, once
            with self._lock:
                self._token = None
            return self._get(path, self._current_token())

    def _get(self, path: str, token: str) -> str | None:
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked in __init__)
            f"{self._base_url}/latest/meta-data/{path}", headers={"X-aws-ec2-metadata-token": token}
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                return str(response.read().decode())
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            if error.code == 401:
                raise _TokenRejected(str(error)) from error
            raise ImdsUnavailable(str(error)) from error
        except OSError as error:  # URLError, timeouts, refused connections
            raise ImdsUnavailable(str(error)) from error

    def _current_token(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._token_expires:
                self._token = self._fetch_token()
                self._token_expires = time.monotonic() + _TOKEN_TTL_SECONDS - 60
            return self._token

    def _fetch_token(self) -> str:
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked in __init__)
            f"{self._base_url}/latest/api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(_TOKEN_TTL_SECONDS)},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                return str(response.read().decode())
        except OSError as error:  # HTTPError and URLError included
            raise ImdsUnavailable(str(error)) from error
