"""The demo's server step: start the server on a store, make real requests, print them as curl."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import uvicorn

from genoquery.server.app import create_app
from genoquery.server.auth import Tier, create_token, revoke_token

SHOWN = 700  # characters of each answer printed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Background:
    """uvicorn serving an app on a loopback port in a thread, until stopped."""

    def __init__(self, store: Path) -> None:
        self.port = _free_port()
        config = uvicorn.Config(create_app(store), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join()


def _show(client: httpx.Client, title: str, path: str, params: dict, token: str | None = None) -> dict:
    url = f"{client.base_url}{path}" + (f"?{urlencode(params)}" if params else "")
    header = " -H 'Authorization: Bearer $TOKEN'" if token else ""
    answer = client.get(path, params=params, headers={"Authorization": f"Bearer {token}"} if token else {})
    text = json.dumps(answer.json())
    print(
        f"\n   {title}\n   $ curl{header} '{url}'\n   HTTP {answer.status_code}: "
        f"{text[:SHOWN]}{' ...' if len(text) > SHOWN else ''}"
    )
    return answer.json()


def run(store: Path, rare: str, common: str) -> None:
    """Serve ``store``, show a public lookup with suppression, a Beacon query and a controlled-tier
    carriers request (with a token made for the demo and revoked after), then stop."""
    name = f"demo-{int(time.time())}"
    token = create_token(store, Tier.CONTROLLED, name)
    try:
        with _Background(store) as url, httpx.Client(base_url=url, timeout=60) as client:
            print(f"9. the query server (genoquery serve {store}) on {url}; docs at {url}/docs")
            _show(
                client,
                f"public lookup of the rare variant {rare}: counts of 1..20 come back as null, named in suppressed",
                f"/api/v1/variants/{rare}",
                {},
            )
            _show(
                client,
                f"public lookup of {common}: larger counts rounded to a multiple of 10",
                f"/api/v1/variants/{common}",
                {},
            )
            contig, pos, ref, alt = common.split("-")
            _show(
                client,
                "GA4GH Beacon v2: does anyone carry it? (public: boolean or count)",
                "/beacon/v2/g_variants",
                {
                    "referenceName": contig,
                    "start": int(pos) - 1,
                    "referenceBases": ref,
                    "alternateBases": alt,
                    "requestedGranularity": "count",
                },
            )
            _show(
                client,
                "controlled tier (token from 'genoquery tokens create --tier controlled'): carriers",
                "/api/v1/carriers",
                {"variant": rare},
                token,
            )
            _show(client, "the same without a token", "/api/v1/carriers", {"variant": rare})
    finally:
        revoke_token(store, name)
    print(f"\n   every request is in the audit log: genoquery audit {store}")
