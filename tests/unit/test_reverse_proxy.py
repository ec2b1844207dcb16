"""The reverse proxy shipped in deploy/nginx.conf and run by docker-compose.yml: nginx accepts
the file (when nginx is installed; CI installs it), and the file sets what docs/DEPLOYMENT.md
relies on."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"


def location(conf: str, opening: str) -> str:
    """The text of the location block that starts with `opening` (blocks hold no braces)."""
    start = conf.index(opening)
    return conf[start : conf.index("}", start)]


def test_compose_publishes_the_proxy_not_the_api() -> None:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    proxy = services["proxy"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    assert proxy["ports"] == ["127.0.0.1:8000:80"]
    assert proxy["depends_on"]["api"]["condition"] == "service_healthy"
    assert not services["api"].get("ports"), "clients must come through the proxy"


def test_the_config_bounds_slow_clients_and_streams_progress() -> None:
    conf = NGINX_CONF.read_text()
    for directive in (
        "client_header_timeout 10s;",
        "large_client_header_buffers 4 16k;",
        "client_max_body_size 2m;",
        "limit_conn per_address",
        "server api:8000;",
    ):
        assert directive in conf, directive
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_set_header Connection $connection_upgrade;" in conf
    sockets = location(conf, "location /ws/ {")
    events = location(conf, "location ~ ^/tasks/[^/]+/events$ {")
    for block in (sockets, events):
        assert "proxy_buffering off;" in block
        seconds = int(re.search(r"proxy_read_timeout (\d+)s;", block)[1])  # type: ignore[index]
        assert seconds > 60, "shorter than the api's idle timeout: sockets would be cut"
    assert "$request_method $uri" in conf and "$request " not in conf, "tokens in the log"


@pytest.mark.skipif(
    shutil.which("nginx") is None,
    reason="nginx is not installed (apt-get install nginx-light; .ci/run installs it)",
)
def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    # `api` resolves on the compose network only; nginx -t resolves upstream names.
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.read_text().replace("server api:8000;", "server 127.0.0.1:8000;"))
    checked = subprocess.run(
        ["nginx", "-t", "-c", str(conf), "-p", str(tmp_path), "-e", "stderr"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr
