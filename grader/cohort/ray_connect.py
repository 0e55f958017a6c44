"""Connect the batch to a Ray cluster from the address a mentor typed: a connection, or one line saying why not.

Measured with Ray 2.60 (DESIGN, "Scale facts"): `ray start --head` turns on Ray's token authentication when a
token exists (~/.ray/auth_token, which any earlier `ray.init()` on the machine creates), and a driver that
names the cluster's address sends no token unless RAY_AUTH_MODE=token: its GCS answers "Authentication token
is missing or incorrect" and ray.init gives up with a bare ConnectionError after about 15 s. `address="auto"`
switches token mode on by itself, which is why it connected where "HOST:PORT" did not. So a typed address
gets token mode, as "auto" does, whenever a token is at hand (a cluster without authentication accepts one). Ray
waits minutes on an address where nothing listens: the port is tried first, for a few seconds.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
from pathlib import Path

ADDRESS_FORMS = ("'local' (a Ray started here for the batch), 'auto' (the cluster this machine is a node of), "
                 "HOST:PORT (the head's GCS port, 6379 unless `ray start --head --port` said otherwise; the batch "
                 "runs on a node of the cluster) or ray://HOST:PORT (Ray Client, port 10001)")
_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>\d{1,5})$")
PORT_TIMEOUT = 5.0


class RayConnectError(RuntimeError):
    """No connection to the cluster at the address given; the message is one line for the mentor."""


def parse_address(address: str) -> tuple[str, str | None, int | None]:
    """(kind, host, port): kind is local, auto, gcs or client. ValueError naming --address when it is none."""
    if address in ("local", "auto"):
        return address, None, None
    rest = address.removeprefix("ray://")
    match = _HOST_PORT.match(rest)
    if not address or match is None or not 0 < int(match["port"]) < 65536:
        raise ValueError(f"--address {address!r} is not a Ray address: give {ADDRESS_FORMS}")
    kind = "client" if address.startswith("ray://") else "gcs"
    return kind, match["v6"] or match["host"], int(match["port"])


def token_available() -> bool:
    """Whether Ray would find an authentication token here (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token)."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    return Path(path).is_file()


def _token_mode() -> None:
    """Send Ray's token to a typed address as "auto" would (RAY_AUTH_MODE=token, and Ray's cached config
    refreshed: setting the variable after `import ray` alone is not seen), unless the mentor chose a mode."""
    if "RAY_AUTH_MODE" in os.environ or not token_available():
        return
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _port_answers(host: str, port: int, address: str) -> None:
    try:
        with socket.create_connection((host, port), timeout=PORT_TIMEOUT):
            pass
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise RayConnectError(f"no Ray cluster answers at {address} ({why}): start one there (`ray start --head`, "
                              "README: 'Grading on a Ray cluster') or give --address another address") from None


def connect(address: str, init: dict | None = None):
    """ray.init for `address` (ValueError for a malformed one, RayConnectError for no connection); returns ray."""
    kind, host, port = parse_address(address)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    if kind == "client" and importlib.util.find_spec("grpc") is None:
        raise RayConnectError(f"--address {address}: Ray Client needs the 'ray[client]' extra (grpcio) here and on the "
                              "head; install it, or run the batch on a node of the cluster with --address HOST:6379")
    if kind in ("gcs", "client"):
        _port_answers(host, port, address)
    import ray

    if kind != "local":
        _token_mode()

    options = {"log_to_driver": False, "runtime_env": {"env_vars": {"RAY_USAGE_STATS_ENABLED": "0"}}, **(init or {})}
    if kind == "local":
        options["include_dashboard"] = False
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError, OSError) as exc:
        last = next((line.strip() for line in reversed(str(exc).splitlines()) if line.strip()), type(exc).__name__)
        hint = ""
        if kind == "gcs":
            hint = ("; if the cluster uses token authentication (Ray's default), set RAY_AUTH_TOKEN or copy the head's "
                    "~/.ray/auth_token here" if not token_available() else
                    "; the batch must run on a node of the cluster (a machine where `ray start` ran), with the same "
                    "Ray and Python versions, and the head's token")
        raise RayConnectError(f"could not connect to the Ray cluster at {address}: {last[:300]}{hint}") from None
    return ray
