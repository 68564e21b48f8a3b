"""Two `sembed serve` replicas behind Debian's nginx on loopback (issue #15; docs/deploy.md):
requests spread over both, and one replica's SIGTERM in the middle of a load loses no request.

    serve_replicas.py SEMBED NGINX

Starts two replicas of the built-in model on free loopback ports, nginx with the upstream
configuration of docs/deploy.md (deploy/nginx.conf, its `server` lines replaced by these ports) in a
temporary prefix, then:
1. 200 requests through nginx: both replicas answered (counted from their access logs) and every
   answer is the vector the replica gives directly;
2. 8 client threads sending requests in a loop through nginx; after 1.5 s, SIGTERM to replica A;
   2.5 s more; then every request (hundreds) must have been a 200, A must have exited 0 after
   finishing what it had, and B must have answered after A was gone.
Bounded: every request has a 10 s timeout, the load stops itself, all processes are stopped at the
end. Standard library only. Exit status 0 on success; any failure says what and exits 1.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BODY = json.dumps({"inputs": ["A man is playing a guitar.", "Replicas share nothing."]}).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port: int, timeout: float = 10.0) -> tuple[int, bytes]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/embed", data=BODY, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError as e:
        return -1, str(e).encode()


def wait_health(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing answers /health on port {port}")


class Replica:
    def __init__(self, sembed: str, name: str, tmp: Path):
        self.port = free_port()
        self.name = name
        self.log = tmp / f"{name}.log"
        self.proc = subprocess.Popen(
            [sembed, "serve", "--port", str(self.port), "--color", "never", "--shutdown-grace", "20"],
            stderr=open(self.log, "wb"),
            stdout=subprocess.DEVNULL,
        )

    def requests(self) -> int:
        return len(re.findall(r"POST /embed 200", self.log.read_text(errors="replace")))


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit("usage: serve_replicas.py SEMBED NGINX")
    sembed, nginx = sys.argv[1:]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        a, b = Replica(sembed, "a", tmp), Replica(sembed, "b", tmp)
        procs: list[subprocess.Popen] = [a.proc, b.proc]
        try:
            run(nginx, tmp, a, b, procs)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()


def run(nginx: str, tmp: Path, a: Replica, b: Replica, procs: list) -> None:
    deadline = time.monotonic() + 60
    wait_health(a.port, deadline)
    wait_health(b.port, deadline)
    direct = post(a.port)
    assert direct[0] == 200, direct

    # nginx with deploy/nginx.conf upstream and proxy settings, on a free port, in its own prefix.
    port = free_port()
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    conf = re.sub(
        r"(upstream sembed \{)(.*?)(\n\s*keepalive)",
        lambda m: m.group(1)
        + f"\n    server 127.0.0.1:{a.port} max_fails=1 fail_timeout=5s;"
        + f"\n    server 127.0.0.1:{b.port} max_fails=1 fail_timeout=5s;"
        + m.group(3),
        conf,
        flags=re.S,
    )
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{port};")
    (tmp / "logs").mkdir()
    full = f"""daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/logs/error.log warn;
worker_processes 1;
events {{ worker_connections 256; }}
http {{
access_log {tmp}/logs/access.log;
client_body_temp_path {tmp}/body;
proxy_temp_path {tmp}/proxy;
{conf}
}}
"""
    (tmp / "nginx.conf").write_text(full)
    proc = subprocess.Popen([nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf")], stderr=subprocess.PIPE)
    procs.append(proc)
    wait_health(port, time.monotonic() + 20)

    # 1. Spread: 200 requests, both replicas answer, the same vectors as directly.
    for _ in range(200):
        got = post(port)
        assert got == direct, f"through nginx: {got[0]} {got[1][:200]!r}"
    na, nb = a.requests(), b.requests()
    print(f"spread: replica a answered {na - 1}, replica b {nb} of 200")
    assert na - 1 > 20 and nb > 20, (na, nb)

    # 2. SIGTERM to A under load: no request lost.
    stop = threading.Event()
    results: list[tuple[float, int]] = []
    lock = threading.Lock()

    def client() -> None:
        while not stop.is_set():
            status, body = post(port)
            with lock:
                results.append((time.monotonic(), status))
            if status != 200:
                print(f"failed request: {status} {body[:300]!r}", file=sys.stderr)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    b_before = b.requests()
    killed_at = time.monotonic()
    a.proc.send_signal(signal.SIGTERM)
    code = a.proc.wait(timeout=30)
    a_exited = time.monotonic()
    time.sleep(2.5)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    statuses = [s for _, s in results]
    bad = [s for s in statuses if s != 200]
    after = sum(1 for t, _ in results if t > a_exited)
    print(
        f"SIGTERM under load: {len(statuses)} requests, {len(bad)} not 200; replica a exited {code} "
        f"{a_exited - killed_at:.2f} s after SIGTERM; {after} requests after, replica b answered "
        f"{b.requests() - b_before} during the load"
    )
    assert not bad, f"lost requests: {bad[:10]}"
    assert code == 0, f"replica a exited {code}"
    assert after > 20, "too few requests after the replica stopped to show anything"
    assert len(statuses) > 200, len(statuses)
    proc.send_signal(signal.SIGQUIT)
    proc.wait(timeout=20)
    print("ok")


if __name__ == "__main__":
    main()
