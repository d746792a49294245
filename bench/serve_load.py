#!/usr/bin/env python3
"""serve_load.py - load test of `bitnet serve`: N clients for S seconds.

Starts the server (or uses --url), then every client sends requests back to
back until the time is up: a mix of chat and completion requests, half of
them streamed, with varied prompts and lengths, sampled with a seed. Reports
requests/s, generated tokens/s, latency percentiles (whole request, and time
to the first streamed token), errors, and the server's resident memory
sampled every second (it should stay flat once warm).

  python3 bench/serve_load.py                        # 8 clients, 60 s, models/demo.gguf
  python3 bench/serve_load.py --clients 8 --seconds 60 --parallel 4 --model M --json out.json
"""
import argparse
import http.client
import json
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap.add_argument("--bin", default=os.path.join(root, "build", "bin", "bitnet"))
ap.add_argument("--model", default=os.path.join(root, "models", "demo.gguf"))
ap.add_argument("--clients", type=int, default=8)
ap.add_argument("--seconds", type=float, default=60)
ap.add_argument("--parallel", type=int, default=4, help="server slots")
ap.add_argument("--ctx", type=int, default=0, help="context of each slot (0: the model's)")
ap.add_argument("--max-tokens", type=int, default=64, help="largest max_tokens of a request")
ap.add_argument("--url", help="use a running server (http://HOST:PORT); memory is not measured")
ap.add_argument("--json", help="also write the results here")
a = ap.parse_args()

# ---- the server ----
proc = None
if a.url:
    host, port = a.url.split("//")[1].rsplit(":", 1)
    port = int(port)
else:
    cmd = [a.bin, "serve", "-m", a.model, "--port", "0", "--parallel", str(a.parallel)]
    if a.ctx:
        cmd += ["-c", str(a.ctx)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    r, _, _ = select.select([proc.stdout], [], [], 60)
    line = proc.stdout.readline() if r else ""
    if not line.startswith("listening on"):
        proc.kill()
        sys.exit("the server did not start: %s %s" % (line, proc.stderr.read()))
    host, port = "127.0.0.1", int(line.split(":")[-1])
    threading.Thread(target=lambda: [sys.stderr.write("server: " + ln) for ln in proc.stderr],
                     daemon=True).start()


def rss_mb():
    try:
        with open("/proc/%d/status" % proc.pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1]) / 1024.0
    except (OSError, AttributeError):
        pass
    return None


WORDS = ("the cat sat on a mat while the dog ran after a red ball in the park and "
         "the sun was warm over the quiet town by the sea").split()


def make_request(rng):
    n = rng.randint(4, 24)
    text = " ".join(rng.choice(WORDS) for _ in range(n))
    body = {"max_tokens": rng.randint(8, a.max_tokens), "temperature": 0.8, "seed": rng.randint(0, 1 << 30)}
    if rng.random() < 0.5:
        path = "/v1/chat/completions"
        body["messages"] = [{"role": "user", "content": text}]
    else:
        path = "/v1/completions"
        body["prompt"] = text
    if rng.random() < 0.5:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return path, body


def one(conn, path, body):
    """Returns (ok, completion tokens, latency s, time to first token s or None)."""
    t0 = time.monotonic()
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    if r.status != 200:
        r.read()
        return False, 0, time.monotonic() - t0, None, "HTTP %d" % r.status
    if not body.get("stream"):
        d = json.loads(r.read())
        return True, d["usage"]["completion_tokens"], time.monotonic() - t0, None, None
    ttft, tokens, done = None, 0, False
    for line in r:
        if not line.startswith(b"data: "):
            continue
        d = line[6:].strip()
        if d == b"[DONE]":
            done = True
            continue  # read on to the end of the chunked body, for keep-alive
        ev = json.loads(d)
        if ev.get("usage"):
            tokens = ev["usage"]["completion_tokens"]
        elif ttft is None and ev["choices"] and (ev["choices"][0].get("text") or
                                                 ev["choices"][0].get("delta", {}).get("content")):
            ttft = time.monotonic() - t0
    return done, tokens, time.monotonic() - t0, ttft, None if done else "stream cut"


results, errors = [], []
lock = threading.Lock()
deadline = time.monotonic() + a.seconds


def client(i):
    rng = random.Random(1000 + i)
    conn = http.client.HTTPConnection(host, port, timeout=120)
    while time.monotonic() < deadline:
        path, body = make_request(rng)
        try:
            ok, tok, lat, ttft, why = one(conn, path, body)
        except Exception as e:  # noqa: BLE001 - every failure counts as an error
            ok, tok, lat, ttft, why = False, 0, 0.0, None, repr(e)
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=120)
        with lock:
            (results if ok else errors).append((time.monotonic(), tok, lat, ttft, why))
    conn.close()


mem = []
t_start = time.monotonic()
threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
for t in threads:
    t.start()
while any(t.is_alive() for t in threads):
    m = rss_mb()
    if m is not None:
        mem.append((time.monotonic() - t_start, m))
    time.sleep(1.0)
for t in threads:
    t.join()
elapsed = time.monotonic() - t_start
if proc:
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))] if xs else float("nan")


lat = [r[2] for r in results]
ttft = [r[3] for r in results if r[3] is not None]
tokens = sum(r[1] for r in results)
warm = [m for t, m in mem if t >= min(10.0, a.seconds / 4)]
out = {
    "model": os.path.basename(a.model) if not a.url else a.url,
    "clients": a.clients, "slots": a.parallel, "seconds": round(elapsed, 1),
    "requests": len(results), "errors": len(errors),
    "requests_per_s": round(len(results) / elapsed, 2),
    "tokens_per_s": round(tokens / elapsed, 1),
    "latency_p50_s": round(pct(lat, 50), 3), "latency_p99_s": round(pct(lat, 99), 3),
    "ttft_p50_s": round(pct(ttft, 50), 3), "ttft_p99_s": round(pct(ttft, 99), 3),
    "rss_mb_first": round(mem[0][1], 1) if mem else None,
    "rss_mb_warm": round(warm[0], 1) if warm else None,
    "rss_mb_end": round(mem[-1][1], 1) if mem else None,
    "rss_mb_max": round(max(m for _, m in mem), 1) if mem else None,
    "rss_mb_every_10s": [round(m, 1) for t, m in mem][::10],
}
print("%d clients, %d slots, %.0f s: %d requests (%.2f/s), %d errors, %.1f tokens/s" %
      (a.clients, a.parallel, elapsed, len(results), out["requests_per_s"], len(errors), out["tokens_per_s"]))
print("latency p50 %.3f s, p99 %.3f s; first streamed token p50 %.3f s, p99 %.3f s" %
      (out["latency_p50_s"], out["latency_p99_s"], out["ttft_p50_s"], out["ttft_p99_s"]))
if mem:
    print("server RSS: %.1f MB at start, %.1f MB once warm, %.1f MB at the end (max %.1f MB)" %
          (out["rss_mb_first"], out["rss_mb_warm"] or 0, out["rss_mb_end"], out["rss_mb_max"]))
for e in errors[:5]:
    print("error:", e[4])
if a.json:
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
sys.exit(1 if errors else 0)
