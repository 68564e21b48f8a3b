#!/usr/bin/env python3
"""Load test of `sembed serve` (loopback only), against the offline `sembed embed` and against the Python
service a user would run today (sentence-transformers + FastAPI + uvicorn, bench/serve_baseline.py), in one run.

Parts (--parts, comma-separated; default all but soak):
  offline    `sembed embed --input STSB --format f32 -o /dev/null`, whole process, best/median of --rounds
             → sentences/s: the reference for what the server should sustain.
  startup    `sembed serve --port 0`, --startups times: exec → the `listening on` line → first 200 from
             GET /health (polled in a tight loop); median/min/p90 ms. Also SIGTERM → exit.
  load       32 clients (--clients), one sentence per request (STS-B s1 then s2, round robin), all 2,758
             sentences --passes times → req/s (= sentences/s), p50/p90/p99; ratio to offline (target ≥ 0.80).
             The first responses are checked (OpenAI shape, 384 floats, unit norm) and compared with
             `sembed embed`'s vectors for the same sentences.
  latency    one client, one request at a time, idle server → p50/p90/p99 (--latency-requests).
  overload   a server with --max-concurrent-requests 8 (--overload-limit): one pass at 8 clients (the
             reference), then 80 clients (10×) hammering for --overload-seconds with no backoff: count of every
             status (anything but 200/429 is an error), 429 latency, server RSS (VmRSS/VmHWM from /proc)
             sampled during and after; then recovery on the same server: one pass at 32 clients (a client
             waits --retry-ms after a 429; throughput against the `load` part's) and one at 8 clients
             (against the reference).
  baseline   the `load` and `latency` tests against bench/serve_baseline.py (uvicorn, 1 worker) loading the
             f32 model folder (scripts/fetch-test-model.sh) from the venv at
             ${SEMBED_BENCH_VENV:-~/.cache/sembed/bench-venv} (make it with --setup-baseline); sembed/baseline
             ratios. Without the venv this part is skipped, and said so loudly.
  soak       (--soak SECONDS) 32 clients for SECONDS, server RSS every 10 s, as a table with first/last/max.

The load generator is this process alone: one thread, raw HTTP/1.1 keep-alive sockets on one epoll loop, one
request in flight per connection; a request's latency is from its send() to the last byte of its answer. It
shares the machine's cores with the server, so every load part reports the CPU the generator itself used
(cores, and µs per request) beside the server's (/proc/PID/stat). Every part is bounded in count and time
(--phase-limit) and stops its servers at its end, also on Ctrl-C and errors. Loopback only.

Usage:
  bench/serve.py [--sembed target/release/sembed] [--model builtin|DIR] [--rounds 5] [--parts ...]
                 [--soak SECONDS] [--json FILE]
  bench/serve.py --parts baseline          # only the Python service (no sembed binary needed)
  bench/serve.py --setup-baseline          # create the baseline venv (torch from PyPI: ~6 GB)
"""
import argparse, atexit, collections, json, math, os, re, resource, selectors, signal, socket, statistics
import shutil, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"
VENV = os.environ.get("SEMBED_BENCH_VENV", os.path.expanduser("~/.cache/sembed/bench-venv"))
BASELINE_PINS = ["torch==2.15.0", "sentence-transformers==6.2.0", "fastapi==0.165.0", "uvicorn[standard]==0.55.0"]
ALL_PARTS = ["offline", "startup", "load", "latency", "overload", "baseline"]
CLK = os.sysconf("SC_CLK_TCK")


def cpu_snap():
    """(total, idle + iowait) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:]]
    return sum(v), v[3] + v[4]


def cores_between(s0, s1):
    return (1 - (s1[1] - s0[1]) / max(s1[0] - s0[0], 1)) * os.cpu_count()


def busy_cores(seconds=1.0):
    """Cores the whole machine kept busy over `seconds`: run while none of ours works, it is what other
    processes (a build, say) take from the measurement."""
    s0 = cpu_snap()
    time.sleep(seconds)
    return round(cores_between(s0, cpu_snap()), 2)


def quiet_check(R, a, what):
    """Records the machine's background load before `what`; waits up to --wait-quiet s for it to fall under
    0.15 cores; warns loudly if it does not."""
    deadline = time.perf_counter() + a.wait_quiet
    while True:
        b = busy_cores()
        if b < 0.15 or time.perf_counter() >= deadline:
            break
    R["host"]["background_cores"][what] = b
    if b >= 0.15:
        msg = f"before {what}: other processes keep {b:.2f} of {os.cpu_count()} cores busy: its numbers are skewed"
        loud(msg)
        R["warnings"].append(msg)


def note(msg):
    print(msg, file=sys.stderr, flush=True)


def loud(msg):
    bar = "!" * 78
    note(f"\n{bar}\n!! {msg}\n{bar}")


# ----------------------------------------------------------------------------------------------------------
# Servers


class Server:
    """A server process in its own session (Ctrl-C in the terminal does not reach it; we stop it). Its
    stderr is read by a thread: the `listening on http://HOST:PORT` line gives the port, the rest is kept
    (last 40 lines) for error reports."""

    live = set()

    def __init__(self, name, cmd, env=None, ready_timeout=120.0):
        self.name, self.cmd = name, cmd
        self.t_exec = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env, start_new_session=True)
        Server.live.add(self)
        self.pid = self.proc.pid
        self.tail = collections.deque(maxlen=40)
        self.lines = 0
        self.port = None
        self.t_line = None
        self.ready = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()
        if not self.ready.wait(ready_timeout) or self.port is None:
            self.stop()
            raise RuntimeError(f"{name}: no `listening on http://HOST:PORT` line on stderr within {ready_timeout:.0f} s"
                               f" (exit code {self.proc.poll()})\n  command: {' '.join(cmd)}\n  stderr tail:\n"
                               + "\n".join("    " + l for l in self.tail))

    def _drain(self):
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.lines += 1
            self.tail.append(line)
            if self.port is None:
                m = re.search(r"listening on http://([^\s:/]+|\[[^\]]+\]):(\d+)", line)
                if m:
                    self.t_line = time.perf_counter()
                    self.port = int(m.group(2))
                    self.ready.set()
        self.ready.set()  # EOF: the process is gone (or closed stderr)

    def wait_health(self, timeout=30.0):
        """Tight loop of GET /health (a new connection each try) until a 200. Returns the time of that 200."""
        deadline = time.perf_counter() + timeout
        req = f"GET /health HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nConnection: close\r\n\r\n".encode()
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before /health answered")
            try:
                with socket.create_connection((HOST, self.port), timeout=2) as s:
                    s.sendall(req)
                    head = s.recv(64)
                    if head[9:12] == b"200":
                        return time.perf_counter()
            except OSError:
                pass
        raise RuntimeError(f"{self.name}: GET /health gave no 200 within {timeout:.0f} s")

    def stop(self, grace=10.0):
        """SIGTERM to its process group, SIGKILL after `grace` s. Returns seconds from SIGTERM to exit."""
        Server.live.discard(self)
        if self.proc.poll() is not None:
            return 0.0
        t0 = time.perf_counter()
        try:
            os.killpg(self.pid, signal.SIGTERM)
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            note(f"{self.name}: still running {grace:.0f} s after SIGTERM: SIGKILL")
            os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            self.proc.wait()
        return time.perf_counter() - t0

    def mem_mb(self):
        """(VmRSS, VmHWM) in MB, or (None, None) once the process is gone."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                d = dict(l.split(":", 1) for l in f if l.startswith(("VmRSS", "VmHWM")))
            return int(d["VmRSS"].split()[0]) / 1024, int(d["VmHWM"].split()[0]) / 1024
        except (OSError, KeyError, ValueError):
            return None, None

    def cpu_s(self):
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLK
        except (OSError, IndexError, ValueError):
            return None


def stop_all():
    for s in list(Server.live):
        s.stop(grace=5.0)


def on_signal(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


# ----------------------------------------------------------------------------------------------------------
# The load generator


class Conn:
    __slots__ = ("sock", "buf", "t0", "idx", "need", "hdr", "status", "chunked", "close")

    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buf = bytearray()
        self.idx = -1
        self.reset()

    def reset(self):
        self.buf.clear()
        self.need = -1
        self.hdr = 0
        self.status = 0
        self.chunked = False
        self.close = False


def _chunked_end(buf, pos):
    """End offset of a complete chunked body starting at `pos`, or -1 while incomplete."""
    while True:
        e = buf.find(b"\r\n", pos)
        if e < 0:
            return -1
        size = int(bytes(buf[pos:e]).split(b";")[0], 16)
        if size == 0:
            t = buf.find(b"\r\n\r\n", e)  # trailers (usually none) end with an empty line
            return -1 if t < 0 else t + 4
        pos = e + 2 + size + 2
        if pos > len(buf):
            return -1


def _chunked_body(buf, pos):
    out = bytearray()
    while True:
        e = buf.find(b"\r\n", pos)
        size = int(bytes(buf[pos:e]).split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += buf[e + 2:e + 2 + size]
        pos = e + 2 + size + 2


def check_body(body, want_dim=None):
    """An OpenAI embeddings answer for one input: returns its vector, raises ValueError otherwise."""
    d = json.loads(body)
    if d.get("object") != "list" or not isinstance(d.get("data"), list) or len(d["data"]) != 1:
        raise ValueError(f"not an OpenAI list of one embedding: {body[:200]!r}")
    item = d["data"][0]
    v = item.get("embedding")
    if item.get("index") != 0 or not isinstance(v, list) or not v or not all(isinstance(x, float) for x in v):
        raise ValueError(f"bad data[0]: {body[:200]!r}")
    if want_dim and len(v) != want_dim:
        raise ValueError(f"{len(v)} dimensions, expected {want_dim}")
    if "usage" not in d or "model" not in d:
        raise ValueError(f"no usage/model field: {body[:200]!r}")
    return v


def pct(sorted_xs, p):
    if not sorted_xs:
        return None
    return sorted_xs[min(len(sorted_xs) - 1, max(0, math.ceil(p / 100 * len(sorted_xs)) - 1))]


def run_load(server, reqs, clients, count=None, seconds=None, limit=300.0, retry_429=0.0, validate=8,
             keep_bodies=0, sample_every=None, label=""):
    """`clients` connections, each with one request in flight, requests taken round robin from `reqs`.
    Count mode (`count`): stops once `count` texts were answered (a 429 is sent again with the same text
    after `retry_429` s). Time mode (`seconds`): issues requests until then (every answer moves on to the next
    text, a 429 after `retry_429` s), then waits for those in flight. Never runs past `limit` s.
    Returns a dict of counts, latencies, throughput and CPU."""
    port = server.port
    perf = time.perf_counter
    sel = selectors.DefaultSelector()
    n_req = len(reqs)
    statuses = collections.Counter()
    errors = collections.Counter()
    lat_ok, lat_429, samples, bodies = [], [], [], []
    st = {"invalid": 0, "first_invalid": None, "dim": None, "validated": 0, "issued": 0, "inflight": 0,
          "reconnects": 0}
    waiting = []        # (wake time, conn, text index): parked after a 429
    conns = []

    def send(c, idx):
        data = reqs[idx % n_req]
        for attempt in (0, 1):
            c.idx = idx
            c.reset()
            try:
                c.t0 = perf()
                n = c.sock.send(data)
                if n < len(data):  # never for requests this small, but do not lose bytes if it happens
                    c.sock.setblocking(True)
                    c.sock.sendall(data[n:])
                    c.sock.setblocking(False)
                st["inflight"] += 1
                return
            except OSError as e:  # the server closed this kept-alive connection: a new one, once
                if attempt:
                    errors[f"send: {e.__class__.__name__}"] += 1
                if attempt or not reopen(c):
                    c.idx = -1
                    return

    def next_idx():
        if count is not None and st["issued"] >= count:
            return None
        if seconds is not None and perf() >= t_stop:
            return None
        st["issued"] += 1
        return st["issued"] - 1

    def reopen(c):
        """A new connection for `c`; False (and `c` dropped) if the server cannot be reached."""
        st["reconnects"] += 1
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        try:
            c.sock = Conn(port).sock
        except OSError as e:
            errors[f"connect: {e.__class__.__name__}"] += 1
            conns.remove(c)
            return False
        sel.register(c.sock, selectors.EVENT_READ, c)
        return True

    def go(c, idx):
        if idx is None or (seconds is not None and perf() >= t_stop):
            c.idx = -1
        else:
            send(c, idx)

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    scpu0 = server.cpu_s()
    mach0 = cpu_snap()
    t_start = perf()
    t_stop = t_start + seconds if seconds is not None else None
    t_limit = t_start + limit
    next_sample = t_start
    next_timeout_check = t_start + 1.0
    for _ in range(clients):
        c = Conn(port)
        conns.append(c)
        sel.register(c.sock, selectors.EVENT_READ, c)
    for c in conns:
        go(c, next_idx())
    t_last = t_start
    select = sel.select
    aborted = False
    while st["inflight"] or waiting:
        now = perf()
        if now > t_limit:
            aborted = True
            break
        if sample_every is not None and now >= next_sample:
            rss, hwm = server.mem_mb()
            samples.append((round(now - t_start, 2), rss, hwm))
            next_sample += sample_every
        timeout = 0.05
        if waiting:
            timeout = max(0.0, min(timeout, waiting[0][0] - now))
        for key, _ in select(timeout):
            c = key.data
            if c.idx == -1:  # an idle connection closed by the server (keep-alive timeout): drop it quietly
                sel.unregister(c.sock)
                c.sock.close()
                conns.remove(c)
                continue
            if c.idx == -2:  # parked after a 429 and closed by the server: a new connection for the retry
                reopen(c)
                continue
            try:
                data = c.sock.recv(262144)
            except OSError as e:
                errors[f"recv: {e.__class__.__name__}"] += 1
                data = b""
            if not data:  # closed (or reset) by the server with our request in flight: count it, send again
                errors["connection closed with a request in flight"] += 1
                st["inflight"] -= 1
                if reopen(c):
                    go(c, c.idx)
                continue
            buf = c.buf
            buf += data
            if c.need < 0:
                e = buf.find(b"\r\n\r\n")
                if e < 0:
                    continue
                c.status = int(buf[9:12])
                head = bytes(buf[:e]).lower()
                c.hdr = e + 4
                p = head.find(b"\r\ncontent-length:")
                if p >= 0:
                    q = head.find(b"\r\n", p + 2)
                    c.need = c.hdr + int(head[p + 17:q if q >= 0 else len(head)])
                elif b"\r\ntransfer-encoding: chunked" in head:
                    c.chunked = True
                    c.need = 0
                else:
                    c.need = c.hdr  # no body
                c.close = b"\r\nconnection: close" in head
            if c.chunked:
                if _chunked_end(buf, c.hdr) < 0:
                    continue
            elif len(buf) < c.need:
                continue
            # a complete answer
            t = perf()
            t_last = t
            st["inflight"] -= 1
            code = c.status
            statuses[code] += 1
            if code == 200:
                lat_ok.append(t - c.t0)
                if st["validated"] < validate or len(bodies) < keep_bodies:
                    body = _chunked_body(buf, c.hdr) if c.chunked else bytes(buf[c.hdr:c.need])
                    try:
                        v = check_body(body, st["dim"])
                        st["dim"] = st["dim"] or len(v)
                        norm = math.sqrt(sum(x * x for x in v))
                        if abs(norm - 1) > 1e-3:
                            raise ValueError(f"norm {norm:.5f}, expected 1 (a normalized model)")
                        if len(bodies) < keep_bodies:
                            bodies.append((c.idx % n_req, v))
                    except ValueError as ex:
                        st["invalid"] += 1
                        st["first_invalid"] = st["first_invalid"] or str(ex)
                    st["validated"] += 1
            elif code == 429:
                lat_429.append(t - c.t0)
            else:
                body = b"(chunked)" if c.chunked else bytes(buf[c.hdr:c.need])[:160]
                errors[f"HTTP {code}: {body.decode(errors='replace')}"] += 1
            if c.close and not reopen(c):
                continue
            idx = c.idx if (code == 429 and count is not None) else next_idx()
            if code == 429 and retry_429 > 0 and idx is not None:
                c.idx = -2  # parked
                waiting.append((t + retry_429, c, idx))
            else:
                go(c, idx)
        if waiting:
            now = perf()
            while waiting and waiting[0][0] <= now:
                _, c, idx = waiting.pop(0)
                go(c, idx)
        if now >= next_timeout_check:  # a request unanswered for 60 s is an error; its connection is replaced
            next_timeout_check = now + 1.0
            for c in list(conns):
                if c.idx >= 0 and now - c.t0 > 60:
                    errors["no answer within 60 s"] += 1
                    st["inflight"] -= 1
                    if reopen(c):
                        go(c, next_idx())
    t_end = perf()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    scpu1 = server.cpu_s()
    mach1 = cpu_snap()
    for c in conns:
        c.sock.close()
    sel.close()
    wall = max(t_last - t_start, 1e-9)
    gen_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    answers = sum(statuses.values())
    ok = statuses.get(200, 0)
    lat_ok.sort()
    lat_429.sort()
    ms = lambda x: None if x is None else round(x * 1000, 3)
    out = {
        "label": label, "clients": clients, "wall_s": round(t_end - t_start, 3),
        "aborted_at_limit": aborted, "requests": answers, "ok": ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": dict(errors), "invalid_bodies": st["invalid"], "first_invalid": st["first_invalid"],
        "validated": st["validated"], "dim": st["dim"], "reconnects": st["reconnects"],
        "throughput_rps": round(ok / wall, 1), "answers_per_s": round(answers / wall, 1),
        "lat_ms": {"p50": ms(pct(lat_ok, 50)), "p90": ms(pct(lat_ok, 90)), "p99": ms(pct(lat_ok, 99)),
                   "max": ms(lat_ok[-1] if lat_ok else None),
                   "mean": ms(statistics.fmean(lat_ok) if lat_ok else None)},
        "lat_429_ms": {"p50": ms(pct(lat_429, 50)), "p99": ms(pct(lat_429, 99)),
                       "max": ms(lat_429[-1] if lat_429 else None)} if lat_429 else None,
        "generator_cpu_s": round(gen_cpu, 3),
        "generator_cores": round(gen_cpu / max(t_end - t_start, 1e-9), 3),
        "generator_us_per_answer": round(gen_cpu / max(answers, 1) * 1e6, 1),
        "server_cores": (round((scpu1 - scpu0) / max(t_end - t_start, 1e-9), 3)
                         if scpu0 is not None and scpu1 is not None else None),
    }
    machine = cores_between(mach0, mach1)
    out["machine_cores"] = round(machine, 2)
    # what neither the server nor this generator used: other processes (and the kernel's own work)
    out["other_cores"] = max(0.0, round(machine - out["generator_cores"] - (out["server_cores"] or 0), 2))
    if out["other_cores"] > 0.15 and t_end - t_start > 1:
        loud(f"{label}: other processes kept {out['other_cores']:.2f} cores busy during the measurement: skewed")
    if sample_every is not None:
        if not samples or perf() - t_start - samples[-1][0] > 1.0:  # and one at the end
            rss, hwm = server.mem_mb()
            samples.append((round(perf() - t_start, 2), rss, hwm))
        out["rss_samples"] = samples
    if keep_bodies:
        out["_bodies"] = bodies
    if aborted:
        loud(f"{label}: stopped at the {limit:.0f} s limit with {answers} answers ({ok} ok)")
    bad = {k: v for k, v in statuses.items() if k not in (200, 429)}
    if bad or errors or st["invalid"]:
        loud(f"{label}: unexpected answers: statuses {bad} errors {dict(errors)} invalid bodies {st['invalid']}"
             + (f" (first: {st['first_invalid']})" if st["first_invalid"] else ""))
    return out


# ----------------------------------------------------------------------------------------------------------
# Parts


def offline(a, sembed, model_args, stsb_file, n_sent):
    cmd = [sembed, "embed", *model_args, "--input", stsb_file, "--format", "f32", "-o", "/dev/null"]
    note(f"offline: {' '.join(cmd)} (1 warm-up + {a.rounds} rounds)")

    def run():
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"command failed: {' '.join(cmd)}\n{p.stderr.decode(errors='replace')}")
        return dt

    run()
    times = [run() for _ in range(a.rounds)]
    best, med = min(times), statistics.median(times)
    return {"command": cmd, "sentences": n_sent, "times_s": [round(t, 4) for t in times],
            "best_s": round(best, 4), "median_s": round(med, 4),
            "best_sps": round(n_sent / best, 1), "median_sps": round(n_sent / med, 1)}


def offline_vectors(sembed, model_args, texts, tmp):
    """`sembed embed` vectors of `texts` (f32 rows), to compare the server's answers with."""
    inp, outp = os.path.join(tmp, "check.txt"), os.path.join(tmp, "check.f32")
    with open(inp, "w", encoding="utf-8") as f:
        f.write("\n".join(texts) + "\n")
    subprocess.run([sembed, "embed", *model_args, "--input", inp, "--format", "f32", "-o", outp],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    import array
    v = array.array("f")
    with open(outp, "rb") as f:
        v.frombytes(f.read())
    if sys.byteorder != "little":
        v.byteswap()
    if len(v) % len(texts):
        return None
    d = len(v) // len(texts)
    return [list(v[i * d:(i + 1) * d]) for i in range(len(texts))]


def cosine(x, y):
    return sum(p * q for p, q in zip(x, y)) / (math.sqrt(sum(p * p for p in x)) * math.sqrt(sum(q * q for q in y)))


def startup(a, serve_cmd):
    rows = []
    note(f"startup: {' '.join(serve_cmd)} × {a.startups}")
    for _ in range(a.startups):
        s = Server("sembed serve", serve_cmd, ready_timeout=a.phase_limit)
        try:
            t_health = s.wait_health()
            rss, hwm = s.mem_mb()
        finally:
            t_stop = s.stop()
        rows.append({"line_ms": (s.t_line - s.t_exec) * 1000, "health_ms": (t_health - s.t_exec) * 1000,
                     "stop_ms": t_stop * 1000, "idle_rss_mb": rss})
    h = sorted(r["health_ms"] for r in rows)
    l = sorted(r["line_ms"] for r in rows)
    st = sorted(r["stop_ms"] for r in rows)
    r3 = lambda x: round(x, 2)
    return {"runs": len(rows), "health_ms": {"median": r3(statistics.median(h)), "min": r3(h[0]), "p90": r3(pct(h, 90))},
            "line_ms": {"median": r3(statistics.median(l)), "min": r3(l[0]), "p90": r3(pct(l, 90))},
            "sigterm_to_exit_ms": {"median": r3(statistics.median(st)), "max": r3(st[-1])},
            "idle_rss_mb": rows[-1]["idle_rss_mb"]}


def warm(server, reqs, a, label):
    r = run_load(server, reqs, a.clients, count=min(len(reqs), a.warmup), limit=a.phase_limit, validate=0,
                 label=f"{label} warm-up")
    return r


def load_and_latency(a, server, reqs, label, parts, check=None):
    """Warm-up, the 32-client load (count-bounded), then the single-client latency on the idle server."""
    out = {"startup_ms": round((server.wait_health() - server.t_exec) * 1000, 1)}
    warm(server, reqs, a, label)
    if "load" in parts:
        note(f"{label}: {a.clients} clients × {a.passes * len(reqs)} single-sentence requests")
        rounds = []
        for _ in range(a.load_rounds):
            rounds.append(run_load(server, reqs, a.clients, count=a.passes * len(reqs), limit=a.phase_limit,
                                   keep_bodies=8 if check else 0, label=f"{label} load"))
        best = max(rounds, key=lambda r: r["throughput_rps"])
        med = statistics.median(r["throughput_rps"] for r in rounds)
        out["load"] = dict(best, throughput_median_rps=med, rounds=len(rounds))
        bodies = out["load"].pop("_bodies", None)
        for r in rounds:
            r.pop("_bodies", None)
        if check and bodies:
            out["load"]["cosine_vs_offline_min"] = check(bodies)
        out["rss_after_load_mb"] = server.mem_mb()[0]
    if "latency" in parts:
        time.sleep(0.5)
        note(f"{label}: 1 client × {a.latency_requests} requests, one at a time")
        out["latency"] = run_load(server, reqs, 1, count=a.latency_requests, limit=a.phase_limit,
                                  label=f"{label} latency")
    return out


def overload(a, serve_base, requests_for, ref_rps):
    cmd = serve_base + ["--max-concurrent-requests", str(a.overload_limit)]
    clients = a.overload_limit * 10
    s = Server("sembed serve (overload)", cmd, ready_timeout=a.phase_limit)
    try:
        s.wait_health()
        reqs = requests_for(s.port)
        warm(s, reqs, argparse.Namespace(**{**vars(a), "clients": a.overload_limit}), "overload")
        note(f"overload: first {a.overload_limit} clients (= the limit) × {len(reqs)} requests, for reference")
        limit_before = run_load(s, reqs, a.overload_limit, count=len(reqs), retry_429=a.retry_ms / 1000,
                                limit=a.phase_limit, label="at the limit, before")
        before = s.mem_mb()
        note(f"overload: --max-concurrent-requests {a.overload_limit}, {clients} clients for {a.overload_seconds:.0f} s")
        hammer = run_load(s, reqs, clients, seconds=a.overload_seconds, limit=a.overload_seconds + 60,
                          sample_every=0.5, label="overload")
        after = s.mem_mb()
        time.sleep(1.0)
        note(f"overload: recovery, {a.clients} clients × {len(reqs)} requests (retry {a.retry_ms:g} ms after a 429)")
        rec = run_load(s, reqs, a.clients, count=len(reqs), retry_429=a.retry_ms / 1000, limit=a.phase_limit,
                       sample_every=0.5, label="recovery")
        time.sleep(0.5)
        note(f"overload: {a.overload_limit} clients (= the limit) × {len(reqs)} requests, again")
        at_limit = run_load(s, reqs, a.overload_limit, count=len(reqs), retry_429=a.retry_ms / 1000,
                            limit=a.phase_limit, label="at the limit, after")
        time.sleep(2.0)
        idle = s.mem_mb()
        alive = s.proc.poll() is None
    finally:
        s.stop()
    if not alive:
        loud("overload: the server died")
    ok_only = set(hammer["statuses"]) <= {"200", "429"} and not hammer["errors"]
    return {"limit": a.overload_limit, "clients": clients, "seconds": a.overload_seconds,
            "at_limit_before": limit_before, "hammer": hammer, "recovery": rec, "at_limit": at_limit, "only_200_and_429": ok_only,
            "rss_mb": {"before": before[0], "max_during": max((x[1] for x in hammer["rss_samples"] + rec["rss_samples"] if x[1]), default=None),
                       "after_hammer": after[0], "idle_after_recovery": idle[0], "hwm": idle[1]},
            "recovery_vs_load": round(rec["throughput_rps"] / ref_rps, 3) if ref_rps else None,
            "at_limit_after_vs_before": round(at_limit["throughput_rps"] / max(limit_before["throughput_rps"], 1e-9), 3)}


def soak(a, serve_cmd, requests_for):
    s = Server("sembed serve (soak)", serve_cmd, ready_timeout=a.phase_limit)
    try:
        s.wait_health()
        reqs = requests_for(s.port)
        note(f"soak: {a.clients} clients for {a.soak:.0f} s, RSS every 10 s")
        r = run_load(s, reqs, a.clients, seconds=a.soak, limit=a.soak + 120, sample_every=10.0, label="soak")
        r["rss_end"] = s.mem_mb()
    finally:
        s.stop()
    rss = [x[1] for x in r["rss_samples"] if x[1]]
    r["rss_first_last_max_mb"] = [rss[0], rss[-1], max(rss)] if rss else None
    return r


def setup_baseline():
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", *BASELINE_PINS], check=True)
    print(py)


def baseline_python():
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        return None, f"no venv at {VENV}"
    p = subprocess.run([py, "-c", "import torch, sentence_transformers, fastapi, uvicorn"], capture_output=True, text=True)
    if p.returncode != 0:
        return None, f"{py} lacks torch/sentence-transformers/fastapi/uvicorn: {p.stderr.strip().splitlines()[-1:]}"
    return py, None


# ----------------------------------------------------------------------------------------------------------
# Report


def f(x, fmt="{:.1f}"):
    return "—" if x is None else fmt.format(x)


def report(R, a):
    print("\n# sembed serve benchmark")
    print(f"host: {R['host']['cpus']} CPUs ({R['host']['cpu']}); sembed model: {R['model']}; "
          f"{R['sentences']} STS-B sentences, one per request")
    if "offline" in R:
        o = R["offline"]
        print(f"\n## offline: sembed embed --input (whole process, {a.rounds} rounds)")
        print(f"best {o['best_s'] * 1000:.0f} ms = {o['best_sps']:.0f} sent/s; median {o['median_s'] * 1000:.0f} ms = {o['median_sps']:.0f} sent/s")
    if "startup" in R:
        s = R["startup"]
        print(f"\n## startup: exec → first 200 from /health ({s['runs']} runs)")
        print("| | median | min | p90 |\n|---|---|---|---|")
        print(f"| exec → `listening on` line | {s['line_ms']['median']} ms | {s['line_ms']['min']} ms | {s['line_ms']['p90']} ms |")
        print(f"| exec → /health 200 | {s['health_ms']['median']} ms | {s['health_ms']['min']} ms | {s['health_ms']['p90']} ms |")
        print(f"SIGTERM → exit (idle): median {s['sigterm_to_exit_ms']['median']} ms, max {s['sigterm_to_exit_ms']['max']} ms; "
              f"idle RSS {f(s['idle_rss_mb'])} MB")
    rows = [(k, R[k]) for k in ("sembed", "baseline") if k in R]
    if rows:
        print("\nservers measured: " + "; ".join(f"{v['name']}: exec → /health 200 in {v['startup_ms']:.0f} ms, "
                                                f"RSS at the end {f(v.get('rss_mb', (None,))[0])} MB" for _, v in rows))
    if any("load" in v for _, v in rows):
        print(f"\n## {a.clients} clients, single-sentence requests (count-bounded)")
        print("| server | requests | req/s | p50 | p90 | p99 | max | server cores | generator cores | gen µs/req | other procs' cores | non-200 |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for k, v in rows:
            if "load" in v:
                L = v["load"]
                non = sum(n for s, n in L["statuses"].items() if s != "200") + sum(L["errors"].values())
                print(f"| {v['name']} | {L['requests']} | {L['throughput_rps']:.0f} | {L['lat_ms']['p50']:.2f} ms | "
                      f"{L['lat_ms']['p90']:.2f} ms | {L['lat_ms']['p99']:.2f} ms | {L['lat_ms']['max']:.1f} ms | "
                      f"{f(L['server_cores'], '{:.2f}')} | {L['generator_cores']:.2f} | {L['generator_us_per_answer']:.0f} | {L['other_cores']:.2f} | {non} |")
    for k, v in rows:
        if "load" in v:
            L = v["load"]
            c = L.get("cosine_vs_offline_min")
            print(f"{v['name']}: {L['validated']} answers checked (OpenAI shape, {L['dim']} dims, unit norm), "
                  f"{L['invalid_bodies']} invalid" + ("" if c is None else f"; min cosine to `sembed embed` {c}"))
    if any("latency" in v for _, v in rows):
        print("\n## 1 client, one request at a time (idle server)")
        print("| server | requests | p50 | p90 | p99 | req/s | generator µs/req | other procs' cores |\n|---|---|---|---|---|---|---|---|")
        for k, v in rows:
            if "latency" in v:
                L = v["latency"]
                print(f"| {v['name']} | {L['requests']} | {L['lat_ms']['p50']:.3f} ms | {L['lat_ms']['p90']:.3f} ms | "
                      f"{L['lat_ms']['p99']:.3f} ms | {L['throughput_rps']:.0f} | {L['generator_us_per_answer']:.0f} | {L['other_cores']:.2f} |")
    if R.get("ratios"):
        print("\n## ratios")
        for k, v in R["ratios"].items():
            print(f"- {k}: {v}")
    if "overload" in R:
        o = R["overload"]
        h, r = o["hammer"], o["recovery"]
        print(f"\n## overload: --max-concurrent-requests {o['limit']}, {o['clients']} clients, {o['seconds']:.0f} s, no backoff")
        b = o["at_limit_before"]
        print(f"before: {b['clients']} clients (= the limit), {b['ok']} sentences: {b['throughput_rps']:.0f} req/s, "
              f"p50 {f(b['lat_ms']['p50'], '{:.2f}')} ms, p99 {f(b['lat_ms']['p99'], '{:.2f}')} ms, statuses {b['statuses']}")
        print(f"hammer statuses: {h['statuses']}  errors: {h['errors'] or 'none'}  → only 200/429: {'yes' if o['only_200_and_429'] else 'NO'}")
        print(f"200s: {h['throughput_rps']:.0f}/s, p50 {f(h['lat_ms']['p50'], '{:.2f}')} ms, p99 {f(h['lat_ms']['p99'], '{:.2f}')} ms; "
              f"429s: {h['statuses'].get('429', 0) / max(h['wall_s'], 1e-9):.0f}/s, "
              + (f"p50 {h['lat_429_ms']['p50']:.3f} ms, p99 {h['lat_429_ms']['p99']:.3f} ms" if h["lat_429_ms"] else "none")
              + f"; generator {h['generator_cores']:.2f} cores, server {f(h['server_cores'], '{:.2f}')} cores")
        m = o["rss_mb"]
        print(f"RSS: before {f(m['before'])} MB, max during {f(m['max_during'])} MB, after {f(m['after_hammer'])} MB, "
              f"idle after recovery {f(m['idle_after_recovery'])} MB (VmHWM {f(m['hwm'])} MB)")
        print(f"recovery ({r['clients']} clients, a client waits {a.retry_ms:g} ms after a 429, {r['ok']} sentences): {r['throughput_rps']:.0f} req/s "
              f"({f(o['recovery_vs_load'], '{:.2f}')}× the load part), p50 {f(r['lat_ms']['p50'], '{:.2f}')} ms, "
              f"p99 {f(r['lat_ms']['p99'], '{:.2f}')} ms, statuses {r['statuses']}")
        r = o["at_limit"]
        print(f"then {r['clients']} clients (= the limit) again, {r['ok']} sentences: {r['throughput_rps']:.0f} req/s "
              f"({o['at_limit_after_vs_before']:.2f}× before), "
              f"p50 {f(r['lat_ms']['p50'], '{:.2f}')} ms, p99 {f(r['lat_ms']['p99'], '{:.2f}')} ms, statuses {r['statuses']}"
              + ("" if set(r["statuses"]) <= {"200"} else "  (429 below the limit: the slot is freed after the answer is sent?)"))
    if "soak" in R:
        s = R["soak"]
        print(f"\n## soak: {s['clients']} clients, {s['wall_s']:.0f} s: {s['throughput_rps']:.0f} req/s, "
              f"p50 {f(s['lat_ms']['p50'], '{:.2f}')} ms, p99 {f(s['lat_ms']['p99'], '{:.2f}')} ms, statuses {s['statuses']}")
        print("| t (s) | VmRSS MB | VmHWM MB |\n|---|---|---|")
        for t, rss, hwm in s["rss_samples"]:
            print(f"| {t:.0f} | {f(rss)} | {f(hwm)} |")
        if s["rss_first_last_max_mb"]:
            print("first / last / max VmRSS: " + " / ".join(f"{x:.1f}" for x in s["rss_first_last_max_mb"]) + " MB")
    bg = R["host"]["background_cores"]
    if bg:
        print("\nbackground load before each part (cores busy with other processes): "
              + ", ".join(f"{k} {v:.2f}" for k, v in bg.items()))
    for w in R["warnings"]:
        print(f"\nWARNING: {w}")


# ----------------------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sembed", default=os.path.join(ROOT, "target", "release", "sembed"))
    ap.add_argument("--model", default="builtin", help="sembed's model: builtin (default) or a folder")
    ap.add_argument("--baseline-model", default=None, help="the baseline's model folder (default: scripts/fetch-test-model.sh)")
    ap.add_argument("--parts", default=",".join(ALL_PARTS), help=f"comma-separated, of {','.join(ALL_PARTS)}")
    ap.add_argument("--soak", type=float, default=None, metavar="SECONDS", help="also run the soak part")
    ap.add_argument("--rounds", type=int, default=5, help="offline rounds (best/median)")
    ap.add_argument("--startups", type=int, default=20)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--passes", type=int, default=2, help="passes over the STS-B sentences in the load part")
    ap.add_argument("--load-rounds", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=256, help="requests before measuring, per server")
    ap.add_argument("--latency-requests", type=int, default=1000)
    ap.add_argument("--overload-limit", type=int, default=8)
    ap.add_argument("--overload-seconds", type=float, default=10.0)
    ap.add_argument("--retry-ms", type=float, default=50.0, help="after the overload: a client's wait after a 429")
    ap.add_argument("--phase-limit", type=float, default=300.0, help="seconds any one measurement may take")
    ap.add_argument("--request-model", default="all-MiniLM-L6-v2", help="the `model` field of each request")
    ap.add_argument("--no-quiet", action="store_true", help="do not pass --quiet to sembed serve")
    ap.add_argument("--serve-arg", action="append", default=[], help="one more argument to sembed serve (repeatable)")
    ap.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                    help="before each part, wait up to this long for other processes to leave the cores idle")
    ap.add_argument("--baseline-route", choices=["sync", "async"], default="sync",
                    help="the baseline's route: `def` (FastAPI's thread pool) or `async def` (on the event loop)")
    ap.add_argument("--json", default=None, metavar="FILE")
    ap.add_argument("--setup-baseline", action="store_true", help=f"create the baseline venv at {VENV} and exit")
    a = ap.parse_args()
    if a.setup_baseline:
        return setup_baseline()
    parts = set(p for p in a.parts.split(",") if p)
    if parts - set(ALL_PARTS) - {"soak"}:
        ap.error(f"unknown parts: {parts - set(ALL_PARTS)}")
    if a.soak:
        parts.add("soak")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # also when started with SIGINT ignored (a background job)
    atexit.register(stop_all)

    rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(ROOT, "tests/data/stsb-test.tsv"), encoding="utf-8")]
    texts = [r[5] for r in rows] + [r[6] for r in rows]
    tmp = tempfile.mkdtemp(prefix="sembed-serve-bench.")
    atexit.register(shutil.rmtree, tmp, True)
    stsb = os.path.join(tmp, "stsb.txt")
    with open(stsb, "w", encoding="utf-8") as fh:
        fh.write("\n".join(texts) + "\n")

    def requests_for(port):
        out = []
        for t in texts:
            body = json.dumps({"model": a.request_model, "input": t}).encode()
            out.append(b"POST /v1/embeddings HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\n\r\n" % (HOST.encode(), port, len(body)) + body)
        return out

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    R = {"host": {"cpus": os.cpu_count(), "cpu": cpu, "background_cores": {}}, "model": a.model, "sentences": len(texts), "warnings": [],
         "config": {k: v for k, v in vars(a).items() if k != "setup_baseline"}}
    sembed_parts = parts & {"offline", "startup", "load", "latency", "overload", "soak"}
    model_args = [] if a.model == "builtin" else ["--model", a.model]
    serve_cmd = [a.sembed, "serve", *model_args, "--port", "0", "--host", HOST] + ([] if a.no_quiet else ["--quiet"]) + a.serve_arg
    if sembed_parts and not os.access(a.sembed, os.X_OK):
        sys.exit(f"no sembed binary at {a.sembed} (cargo build --release, or --sembed PATH; --parts baseline runs without it)")
    try:
        if "offline" in parts:
            quiet_check(R, a, "offline")
            R["offline"] = offline(a, a.sembed, model_args, stsb, len(texts))
        if "startup" in parts:
            quiet_check(R, a, "startup")
            R["startup"] = startup(a, serve_cmd)
        if parts & {"load", "latency"}:
            quiet_check(R, a, "sembed load")
            s = Server("sembed serve", serve_cmd, ready_timeout=a.phase_limit)
            try:
                def check(bodies):
                    ref = offline_vectors(a.sembed, model_args, [texts[i] for i, _ in bodies], tmp)
                    if ref is None:
                        return None
                    return round(min(cosine(v, r) for (_, v), r in zip(bodies, ref)), 7)
                R["sembed"] = {"name": f"sembed serve ({a.model})",
                               **load_and_latency(a, s, requests_for(s.port), "sembed", parts, check)}
                R["sembed"]["rss_mb"] = s.mem_mb()
            finally:
                s.stop()
        if "baseline" in parts:
            py, why = baseline_python()
            if py is None:
                msg = (f"baseline SKIPPED: {why}. Create it with `bench/serve.py --setup-baseline` "
                       f"(pip: {' '.join(BASELINE_PINS)}; ~6 GB) or set SEMBED_BENCH_VENV")
                loud(msg)
                R["warnings"].append(msg)
            else:
                bmodel = a.baseline_model or subprocess.run([os.path.join(ROOT, "scripts", "fetch-test-model.sh")],
                                                            check=True, capture_output=True, text=True).stdout.strip()
                env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
                cmd = [py, os.path.join(ROOT, "bench", "serve_baseline.py"), "--model", bmodel, "--host", HOST, "--port", "0",
                       "--route", a.baseline_route]
                quiet_check(R, a, "baseline")
                note(f"baseline: {' '.join(cmd)}")
                s = Server("baseline (FastAPI + sentence-transformers)", cmd, env=env, ready_timeout=a.phase_limit)
                try:
                    R["baseline"] = {"name": f"sentence-transformers + FastAPI/uvicorn ({a.baseline_route} route, f32)", "model_dir": bmodel,
                                     **load_and_latency(a, s, requests_for(s.port), "baseline", parts & {"load", "latency"} or {"load", "latency"})}
                    R["baseline"]["rss_mb"] = s.mem_mb()
                finally:
                    s.stop()
        ratios = {}
        sl, bl = R.get("sembed", {}), R.get("baseline", {})
        if "load" in sl and "offline" in R:
            ratios["sembed serve / offline throughput (target ≥ 0.80)"] = round(sl["load"]["throughput_rps"] / R["offline"]["median_sps"], 3)
        if "load" in sl and "load" in bl:
            ratios["throughput sembed / baseline"] = round(sl["load"]["throughput_rps"] / bl["load"]["throughput_rps"], 2)
            ratios["32-client p50 latency baseline / sembed"] = round(bl["load"]["lat_ms"]["p50"] / sl["load"]["lat_ms"]["p50"], 2)
            ratios["32-client p99 latency baseline / sembed"] = round(bl["load"]["lat_ms"]["p99"] / sl["load"]["lat_ms"]["p99"], 2)
        if "latency" in sl and "latency" in bl:
            ratios["1-client p50 latency baseline / sembed"] = round(bl["latency"]["lat_ms"]["p50"] / sl["latency"]["lat_ms"]["p50"], 2)
        R["ratios"] = ratios
        if "overload" in parts:
            quiet_check(R, a, "overload")
            R["overload"] = overload(a, serve_cmd, requests_for, sl.get("load", {}).get("throughput_rps"))
        if "soak" in parts:
            quiet_check(R, a, "soak")
            R["soak"] = soak(a, serve_cmd, requests_for)
    except KeyboardInterrupt:
        note("interrupted: stopping the servers")
        stop_all()
        R["warnings"].append("interrupted: partial results")
        report(R, a)
        if a.json:
            json.dump(R, open(a.json, "w"), indent=1)
        sys.exit(130)
    finally:
        stop_all()
    for k in ("sembed", "baseline"):
        for p in ("load", "latency"):
            L = R.get(k, {}).get(p)
            if L and L["other_cores"] > 0.15:
                R["warnings"].append(f"{k} {p}: other processes used {L['other_cores']:.2f} cores during it: skewed")
            if L and (L["aborted_at_limit"] or L["errors"] or L["invalid_bodies"] or set(L["statuses"]) - {"200"}):
                R["warnings"].append(f"{k} {p}: statuses {L['statuses']}, errors {L['errors']}, invalid {L['invalid_bodies']}, "
                                     f"aborted {L['aborted_at_limit']}")
    if "overload" in R and not R["overload"]["only_200_and_429"]:
        R["warnings"].append(f"overload: statuses other than 200/429: {R['overload']['hammer']['statuses']} {R['overload']['hammer']['errors']}")
    report(R, a)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(R, fh, indent=1)
        note(f"wrote {a.json}")


if __name__ == "__main__":
    main()
