"""A real Prometheus server and a small service it scrapes, for the guard's tests.

The service is prometheus_client's HTTP server in the test process, with gauges the test
sets (a background thread adds 1% noise around each centre, as live metrics have);
Prometheus runs from /usr/bin/prometheus on a free 127.0.0.1 port with its own config
and data folder in tmp_path, scraping every second.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram, start_http_server

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def have_prometheus() -> bool:
    return Path(PROMETHEUS).is_file()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Service:
    """Gauges `svc_latency_seconds`, `svc_error_ratio`, `svc_memory_mib`, `svc_canary_ms{role}`;
    the histogram `svc_request_seconds` (buckets 0.05, 0.1, 0.25, +Inf), observed only after
    `serve` (20 requests a second, each of the duration it was given)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Gauge("svc_latency_seconds", "p99 latency", registry=self.registry)
        self.errors = Gauge("svc_error_ratio", "failed / all", registry=self.registry)
        self.memory = Gauge("svc_memory_mib", "GPU memory", registry=self.registry)
        self.canary = Gauge("svc_canary_ms", "latency by role", ["role"], registry=self.registry)
        self.requests = Histogram(
            "svc_request_seconds",
            "request durations",
            buckets=(0.05, 0.1, 0.25),
            registry=self.registry,
        )
        self.request_s: float | None = None
        self.centres: dict[tuple[Gauge, str | None], float] = {}
        self._stop = threading.Event()
        self.server, _thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.port: int = self.server.server_port
        self.set(self.latency, 0.1)
        self.set(self.errors, 0.001)
        self.set(self.memory, 4000.0)
        self._jitter = threading.Thread(target=self._run, daemon=True)
        self._jitter.start()

    def set(self, gauge: Gauge, centre: float, role: str | None = None) -> None:
        """Hold `gauge` around `centre` (1% noise) from now on."""
        self.centres[(gauge, role)] = centre
        self._apply(random.Random())

    def serve(self, seconds: float) -> None:
        """Requests taking `seconds` each from now on."""
        self.request_s = seconds

    def _apply(self, rng: random.Random) -> None:
        for (gauge, role), centre in list(self.centres.items()):
            value = centre * (1 + rng.gauss(0, 0.01))
            (gauge.labels(role=role) if role is not None else gauge).set(value)

    def _run(self) -> None:
        rng = random.Random(11)
        while not self._stop.wait(0.2):
            self._apply(rng)
            if self.request_s is not None:
                for _ in range(4):
                    self.requests.observe(self.request_s)

    def close(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()


class PrometheusServer:
    def __init__(self, tmp: Path, scrape_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        tmp.mkdir(parents=True, exist_ok=True)
        config = tmp / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 900ms}\n"
            "scrape_configs:\n"
            f"  - job_name: svc\n    static_configs: [{{targets: ['127.0.0.1:{scrape_port}']}}]\n"
        )
        self.log = (tmp / "prometheus.log").open("wb")
        self.argv = [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        self.start()

    def start(self) -> None:
        """Started (again, after `halt`: the same port and data, what it scraped is kept)."""
        self.proc = subprocess.Popen(
            self.argv, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("prometheus did not become ready")

    def query(self, q: str) -> Any:
        import json
        import urllib.parse

        with urllib.request.urlopen(
            f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': q})}", timeout=5
        ) as r:
            return json.loads(r.read())["data"]["result"]

    def wait_for_samples(self, q: str, n: int, timeout: float = 30.0) -> None:
        """Until the last `n` seconds of `q` are all in the database (scrapes landed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(f"count_over_time(({q})[{n}s:1s])")
            if result and float(result[0]["value"][1]) >= n:
                return
            time.sleep(0.5)
        raise RuntimeError(f"no {n}s of samples of {q}")

    def stop(self) -> None:
        self.halt()
        self.log.close()

    def halt(self) -> None:
        """The server stopped (down, or restarting), its data kept for `start`."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def prometheus_and_service(tmp: Path) -> Iterator[tuple[PrometheusServer, Service]]:
    service = Service()
    server = None
    try:
        server = PrometheusServer(tmp, service.port)
        yield server, service
    finally:
        if server is not None:
            server.stop()
        service.close()
