#!/usr/bin/env python3
"""serve_test.py - end-to-end tests of `bitnet serve`, run by tests/e2e_serve.sh.

Usage: serve_test.py BITNET_BIN TMPDIR

Starts the server on a free loopback port (--port 0) with a generated tiny
model and talks to it over real HTTP (urllib, http.client, raw sockets).
Expectations are independent of the server: greedy text comes from `bitnet
run --print-ids` decoded by `bitnet detokenize`, concurrent results from the
same requests sent one at a time, stop-string results from cutting the text
here. Prints "N passed, N failed"; every network call has a timeout.
"""
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

BIN, TMP = sys.argv[1], sys.argv[2]
os.makedirs(TMP, exist_ok=True)
MODEL = os.path.join(TMP, "tiny.gguf")
N_CTX = 4096  # the model below is generated with --ctx 4096
passes = fails = 0


def check(name, cond, detail=""):
    global passes, fails
    if cond:
        passes += 1
    else:
        fails += 1
        print(f"FAIL: {name} {detail}"[:2000])


class Server:
    started = False

    def __init__(self, *args):
        for old in os.listdir(TMP) if not Server.started else []:
            if old.startswith("server-"):  # logs of an earlier run
                os.remove(os.path.join(TMP, old))
        Server.started = True
        self.log = open(os.path.join(TMP, "server-%d.log" % time.monotonic_ns()), "w+")
        cmd = [BIN, "serve", "-m", MODEL, "--port", "0", "-c", str(N_CTX), *args]
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True)
        r, _, _ = select.select([self.p.stdout], [], [], 30)
        line = self.p.stdout.readline() if r else ""
        if not line.startswith("listening on http://"):
            self.p.kill()
            self.log.seek(0)
            raise RuntimeError("server did not start: %r %s" % (line, self.log.read()))
        self.url = line.split()[-1]
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self, timeout=15):
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None


def call(srv, method, path, body=None, headers=None, timeout=60):
    """One request with urllib; returns (status, headers, body bytes)."""
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(srv.url + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def call_json(srv, method, path, body=None, headers=None, timeout=60):
    st, hd, raw = call(srv, method, path, body, headers, timeout)
    try:
        return st, json.loads(raw.decode())
    except ValueError:
        return st, {"unparsable": raw[:200]}


def stream(srv, path, body, headers=None, timeout=60):
    """A streaming request; returns (status, content type, [event, ...]) where an
    event is the parsed JSON of a data: line or the string '[DONE]'."""
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
    h = {"Content-Type": "application/json", **(headers or {})}
    c.request("POST", path, json.dumps({**body, "stream": True}), h)
    r = c.getresponse()
    events = []
    if r.status == 200:
        for line in r:
            line = line.decode().rstrip("\r\n")
            if line.startswith("data: "):
                d = line[6:]
                events.append("[DONE]" if d == "[DONE]" else json.loads(d))
    else:
        r.read()
    c.close()
    return r.status, r.getheader("Content-Type"), events


def health(srv):
    return call_json(srv, "GET", "/health", timeout=10)[1]


def wait_idle(srv, secs=10.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < secs:
        h = health(srv)
        if h.get("slots_idle") == h.get("slots_total") and h.get("requests_queued") == 0:
            return True, time.monotonic() - t0
        time.sleep(0.05)
    return False, secs


def cli(*args):
    return subprocess.run([BIN, *args], capture_output=True, timeout=120).stdout


# ---- setup ----
subprocess.run([BIN, "gen", "-o", MODEL, "--shape", "tiny", "--type", "i2_s", "--seed", "3", "--ctx", "4096"],
               check=True, capture_output=True, timeout=120)
srv = Server("--parallel", "4", "--max-body", "1048576", "-t", "1")
check("listens on loopback by default", srv.url.startswith("http://127.0.0.1:"), srv.url)

# ---- health, models ----
st, h = call_json(srv, "GET", "/health")
check("health", st == 200 and h.get("status") == "ok" and h.get("slots_total") == 4, str(h))
st, m = call_json(srv, "GET", "/v1/models")
check("models", st == 200 and m.get("object") == "list" and m["data"][0]["id"] == "tiny"
      and m["data"][0]["object"] == "model", str(m))

# ---- a completion against the CLI ----
P = [1, 300, 45, 977]
ids = [int(t) for t in cli("run", "-m", MODEL, "--prompt-ids", ",".join(map(str, P)), "-n", "12",
                           "--temp", "0", "--print-ids", "-c", str(N_CTX)).split()]
full = cli("detokenize", "-m", MODEL, *map(str, P + ids)).decode()
head = cli("detokenize", "-m", MODEL, *map(str, P)).decode()
want = full[len(head):]
req = {"model": "tiny", "prompt": P, "max_tokens": 12, "temperature": 0}
st, r = call_json(srv, "POST", "/v1/completions", req)
ok = st == 200 and r.get("object") == "text_completion"
check("completion: status and object", ok, str(r))
if ok:
    c0 = r["choices"][0]
    check("completion: text = bitnet run", c0["text"] == want, "%r vs %r" % (c0["text"], want))
    check("completion: usage", r["usage"]["prompt_tokens"] == 4
          and r["usage"]["completion_tokens"] == len(ids)
          and r["usage"]["total_tokens"] == 4 + len(ids), str(r["usage"]))
    check("completion: finish_reason", c0["finish_reason"] == ("length" if len(ids) == 12 else "stop"))
    check("completion: id", r["id"].startswith("cmpl-") and r["model"] == "tiny")

st, ctype, ev = stream(srv, "/v1/completions", req)
check("completion stream: status, type", st == 200 and ctype == "text/event-stream", str(ctype))
check("completion stream: ends with [DONE]", ev and ev[-1] == "[DONE]", str(ev[-2:]))
chunks = [e for e in ev if e != "[DONE]"]
check("completion stream: text", "".join(e["choices"][0]["text"] for e in chunks) == want)
check("completion stream: finish", chunks and chunks[-1]["choices"][0]["finish_reason"] in ("length", "stop")
      and all(e["choices"][0]["finish_reason"] is None for e in chunks[:-1]))
check("completion stream: object", all(e["object"] == "text_completion" for e in chunks))

# a text prompt
st, r = call_json(srv, "POST", "/v1/completions", {"prompt": "Once upon a time", "max_tokens": 5,
                                                   "temperature": 0})
check("completion: text prompt", st == 200 and r["usage"]["completion_tokens"] <= 5
      and r["usage"]["prompt_tokens"] > 1, str(r))

# ---- chat ----
msgs = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hi"}]
creq = {"model": "tiny", "messages": msgs, "max_tokens": 10, "temperature": 0}
st, r = call_json(srv, "POST", "/v1/chat/completions", creq)
ok = st == 200 and r.get("object") == "chat.completion"
check("chat: status and object", ok, str(r))
if ok:
    msg = r["choices"][0]["message"]
    check("chat: message", msg["role"] == "assistant" and isinstance(msg["content"], str))
    check("chat: usage", 0 <= r["usage"]["completion_tokens"] <= 10 and r["usage"]["prompt_tokens"] > 3)
    check("chat: id", r["id"].startswith("chatcmpl-"))
    st, ctype, ev = stream(srv, "/v1/chat/completions", {**creq, "stream_options": {"include_usage": True}})
    chunks = [e for e in ev if e != "[DONE]"]
    check("chat stream: status", st == 200 and ctype == "text/event-stream" and ev[-1] == "[DONE]")
    check("chat stream: role first", chunks and chunks[0]["choices"][0]["delta"].get("role") == "assistant")
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in chunks if e["choices"])
    check("chat stream: content = non-streamed", text == msg["content"], "%r vs %r" % (text, msg["content"]))
    check("chat stream: usage chunk", chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"]
          == r["usage"]["completion_tokens"], str(chunks[-1]))
    check("chat stream: finish chunk", chunks[-2]["choices"][0]["finish_reason"] == r["choices"][0]["finish_reason"])
    check("chat stream: chunk object", all(e["object"] == "chat.completion.chunk" for e in chunks))
# content as text parts
st, r = call_json(srv, "POST", "/v1/chat/completions",
                  {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                   "max_tokens": 3})
check("chat: text parts", st == 200, str(r))

# ---- sampling: seeds, stop strings, max_tokens 0 ----
sreq = {"prompt": P, "max_tokens": 16, "temperature": 1.0, "seed": 7}
a = call_json(srv, "POST", "/v1/completions", sreq)[1]["choices"][0]["text"]
b = call_json(srv, "POST", "/v1/completions", sreq)[1]["choices"][0]["text"]
check("seed: same seed, same text", a == b, "%r vs %r" % (a, b))
others = {call_json(srv, "POST", "/v1/completions", {**sreq, "seed": s})[1]["choices"][0]["text"]
          for s in (8, 9, 10)}
check("seed: other seeds differ", len(others | {a}) > 1)

T = call_json(srv, "POST", "/v1/completions", {"prompt": P, "max_tokens": 40,
                                                "temperature": 0})[1]["choices"][0]["text"]
if len(T) >= 16:
    s = T[10:13]
    i = T.find(s)
    st, r = call_json(srv, "POST", "/v1/completions", {"prompt": P, "max_tokens": 40, "temperature": 0,
                                                        "stop": [s, "\u00a7never\u00a7"]})
    check("stop: text cut before the stop string", r["choices"][0]["text"] == T[:i]
          and r["choices"][0]["finish_reason"] == "stop", "%r vs %r" % (r["choices"][0]["text"], T[:i]))
    st, _, ev = stream(srv, "/v1/completions", {"prompt": P, "max_tokens": 40, "temperature": 0, "stop": s})
    text = "".join(e["choices"][0]["text"] for e in ev if e != "[DONE]")
    check("stop: streamed", text == T[:i], "%r vs %r" % (text, T[:i]))
else:
    check("stop: long enough text to cut", False, repr(T))
st, r = call_json(srv, "POST", "/v1/completions", {"prompt": P, "max_tokens": 0})
check("max_tokens 0", st == 200 and r["choices"][0]["text"] == "" and r["usage"]["completion_tokens"] == 0
      and r["choices"][0]["finish_reason"] == "length", str(r))

# ---- the prefix of a continued conversation comes from the cache ----
conv = [{"role": "user", "content": "Tell me a story about a cat and a dog"}]
st, r1 = call_json(srv, "POST", "/v1/chat/completions", {"messages": conv, "max_tokens": 8, "temperature": 0})
conv2 = conv + [{"role": "assistant", "content": r1["choices"][0]["message"]["content"]},
                {"role": "user", "content": "And then?"}]
st, r2 = call_json(srv, "POST", "/v1/chat/completions", {"messages": conv2, "max_tokens": 8, "temperature": 0})
cached = r2["usage"].get("prompt_tokens_details", {}).get("cached_tokens", 0)
check("prefix reuse: cached tokens", st == 200 and cached >= r1["usage"]["prompt_tokens"] - 1,
      "cached %d, first prompt %d" % (cached, r1["usage"]["prompt_tokens"]))

# ---- 8 concurrent clients = the same requests one at a time ----
reqs = []
for i in range(8):
    if i % 2:
        reqs.append(("/v1/completions", {"prompt": [1, 260 + 37 * i, 400 + i, 700 - 5 * i],
                                         "max_tokens": 24, "temperature": 0}))
    else:
        reqs.append(("/v1/chat/completions", {"messages": [{"role": "user", "content": "topic %d" % i}],
                                              "max_tokens": 24, "temperature": 0, "stream": i % 4 == 0}))


def run_req(path, body):
    if body.get("stream"):
        st, _, ev = stream(srv, path, body)
        return st, "".join(e["choices"][0]["delta"].get("content", "") for e in ev
                           if e != "[DONE]" and e["choices"])
    st, r = call_json(srv, "POST", path, body)
    c = r["choices"][0] if st == 200 else {}
    return st, c.get("text", c.get("message", {}).get("content"))


seq = [run_req(p, b) for p, b in reqs]
par = [None] * 8
barrier = threading.Barrier(8)


def client(i):
    barrier.wait(10)
    par[i] = run_req(*reqs[i])


threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join(120)
check("concurrent: all 200", all(p and p[0] == 200 for p in par), str(par))
check("concurrent = sequential", par == seq, "\n%r\n%r" % (par, seq))
check("concurrent: results differ by prompt", len({s[1] for s in seq}) > 4)

# ---- bad requests: 4xx with an OpenAI error body, never a crash ----
CH, CO = "/v1/chat/completions", "/v1/completions"
bad = [
    ("malformed JSON", CH, b"{not json", 400, None, None),
    ("empty body", CH, b"", 400, None, None),
    ("body is an array", CH, b"[1, 2]", 400, None, None),
    ("deep nesting", CH, b"[" * 5000 + b"]" * 5000, 400, None, None),
    ("temperature string", CH, {"messages": msgs, "temperature": "hot"}, 400, "temperature", None),
    ("temperature range", CH, {"messages": msgs, "temperature": 5}, 400, "temperature", None),
    ("max_tokens negative", CH, {"messages": msgs, "max_tokens": -5}, 400, "max_tokens", None),
    ("max_tokens fraction", CH, {"messages": msgs, "max_tokens": 1.5}, 400, "max_tokens", None),
    ("top_p range", CO, {"prompt": "x", "top_p": 1.5}, 400, "top_p", None),
    ("seed string", CO, {"prompt": "x", "seed": "abc"}, 400, "seed", None),
    ("no messages", CH, {"model": "tiny"}, 400, "messages", None),
    ("messages string", CH, {"messages": "hi"}, 400, "messages", None),
    ("messages empty", CH, {"messages": []}, 400, "messages", None),
    ("message not object", CH, {"messages": [42]}, 400, "messages", None),
    ("role unknown", CH, {"messages": [{"role": "wizard", "content": "x"}]}, 400, "messages", None),
    ("content number", CH, {"messages": [{"role": "user", "content": 42}]}, 400, "messages", None),
    ("content image", CH, {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400,
     "messages", None),
    ("stop too many", CO, {"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, 400, "stop", None),
    ("stop number", CO, {"prompt": "x", "stop": 42}, 400, "stop", None),
    ("n 2", CO, {"prompt": "x", "n": 2}, 400, "n", None),
    ("stream string", CO, {"prompt": "x", "stream": "yes"}, 400, "stream", None),
    ("logprobs", CH, {"messages": msgs, "logprobs": True}, 400, "logprobs", None),
    ("model number", CH, {"messages": msgs, "model": 7}, 400, "model", None),
    ("unknown model", CH, {"messages": msgs, "model": "gpt-4"}, 404, "model", "model_not_found"),
    ("no prompt", CO, {"max_tokens": 3}, 400, "prompt", None),
    ("prompt object", CO, {"prompt": {}}, 400, "prompt", None),
    ("prompt id range", CO, {"prompt": [1, 5000]}, 400, "prompt", None),
    ("prompt negative id", CO, {"prompt": [1, -3]}, 400, "prompt", None),
    ("several prompts", CO, {"prompt": ["a", "b"]}, 400, "prompt", None),
    ("prompt too long", CO, {"prompt": [5] * (N_CTX + 5)}, 400, "prompt", "context_length_exceeded"),
    ("chat too long", CH, {"messages": [{"role": "user", "content": "ab " * 9000}]}, 400, "messages",
     "context_length_exceeded"),
    ("body too large", CO, b'{"prompt": "' + b"a" * 2000000 + b'"}', 413, None, "request_too_large"),
]
for name, path, body, want_st, param, code in bad:
    st, r = call_json(srv, "POST", path, body)
    e = r.get("error") if isinstance(r, dict) else None
    good = st == want_st and isinstance(e, dict) and isinstance(e.get("message"), str) and e.get("type")
    if good and param:
        good = e.get("param") == param
    if good and code:
        good = e.get("code") == code
    check("bad request: " + name, good, "%d %s" % (st, r))
for name, method, path, want_st in [("unknown path", "GET", "/v2/nothing", 404),
                                    ("GET on completions", "GET", CO, 405),
                                    ("POST on models", "POST", "/v1/models", 405),
                                    ("DELETE on chat", "DELETE", CH, 405)]:
    st, r = call_json(srv, method, path, b"{}" if method == "POST" else None)
    check("bad request: " + name, st == want_st and "error" in r, "%d %s" % (st, r))
# not HTTP at all, and bytes that are not UTF-8
for junk in (b"GARBAGE\r\n\r\n", b"\x00\xff" * 100 + b"\r\n\r\n"):
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(junk)
        try:
            s.recv(4096)
        except OSError:
            pass
st, r = call_json(srv, "POST", CO, b'{"prompt": "\xff\xfe\xc3", "max_tokens": 2}')
check("invalid UTF-8 in a prompt: an answer", st in (200, 400), "%d %s" % (st, r))
check("alive after bad requests", srv.p.poll() is None and health(srv).get("status") == "ok")

# ---- clients that go away free their slot ----
long_req = {"prompt": P, "temperature": 0}  # no max_tokens: until the context is full
before = health(srv)["tokens_generated"]
c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
c.request("POST", CO, json.dumps({**long_req, "stream": True}), {"Content-Type": "application/json"})
resp = c.getresponse()
got = [resp.readline() for _ in range(4)]
check("disconnect: stream started", resp.status == 200 and any(g.startswith(b"data: ") for g in got))
c.sock.shutdown(socket.SHUT_RDWR)
c.close()
idle, secs = wait_idle(srv)
after = health(srv)["tokens_generated"]
check("disconnect mid-stream: slot freed", idle, "after %.1f s" % secs)
check("disconnect mid-stream: generation stopped early", after - before < N_CTX - 100,
      "%d tokens" % (after - before))

before = after
try:
    call(srv, "POST", CO, long_req, timeout=0.3)
except (TimeoutError, socket.timeout, urllib.error.URLError):
    pass
idle, secs = wait_idle(srv)
after = health(srv)["tokens_generated"]
check("disconnect while waiting: slot freed", idle, "after %.1f s" % secs)
check("disconnect while waiting: stopped early", after - before < N_CTX - 100, "%d tokens" % (after - before))

# four slots busy, a fifth request queued; everyone leaves
conns = []
for i in range(5):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    c.request("POST", CO, json.dumps({**long_req, "stream": True, "prompt": [1, 10 + i]}),
              {"Content-Type": "application/json"})
    conns.append(c)
time.sleep(0.5)
h = health(srv)
check("queue: four busy, one queued", h["slots_idle"] == 0 and h["requests_queued"] == 1, str(h))
for c in conns:
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
idle, secs = wait_idle(srv)
check("queue: all freed after disconnects", idle, "after %.1f s" % secs)
st, r = call_json(srv, "POST", CO, {"prompt": P, "max_tokens": 12, "temperature": 0})
check("after disconnects: same answer", st == 200 and r["choices"][0]["text"] == want)

# shutdown while a stream is running
c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
c.request("POST", CO, json.dumps({**long_req, "stream": True}), {"Content-Type": "application/json"})
c.getresponse().readline()
t0 = time.monotonic()
rc = srv.stop()
check("SIGTERM: clean exit", rc == 0, "exit %s" % rc)
check("SIGTERM: prompt exit", time.monotonic() - t0 < 10)
c.close()

# ---- the API key ----
ksrv = Server("--api-key", "s3cret", "--alias", "demo")
st, r = call_json(ksrv, "GET", "/v1/models")
check("api key: missing -> 401", st == 401 and r["error"]["code"] == "invalid_api_key", str(r))
st, r = call_json(ksrv, "GET", "/v1/models", headers={"Authorization": "Bearer nope"})
check("api key: wrong -> 401", st == 401, str(r))
st, r = call_json(ksrv, "GET", "/v1/models", headers={"Authorization": "s3cret"})
check("api key: not Bearer -> 401", st == 401, str(r))
st, r = call_json(ksrv, "POST", CO, {"prompt": "x", "max_tokens": 2})
check("api key: completion without key -> 401", st == 401, str(r))
st, r = call_json(ksrv, "GET", "/v1/models", headers={"Authorization": "Bearer s3cret"})
check("api key: right -> 200, alias", st == 200 and r["data"][0]["id"] == "demo", str(r))
st, r = call_json(ksrv, "POST", CH, {"model": "demo", "messages": msgs, "max_tokens": 2},
                  headers={"Authorization": "Bearer s3cret"})
check("api key: chat with key", st == 200, str(r))
st, r = call_json(ksrv, "GET", "/health")
check("api key: /health is open", st == 200)
check("api key server: clean exit", ksrv.stop() == 0)

# ---- start-up errors ----
p = subprocess.run([BIN, "serve", "-m", os.path.join(TMP, "missing.gguf"), "--port", "0"],
                   capture_output=True, text=True, timeout=30)
check("missing model: exit 1 with error", p.returncode == 1 and p.stderr.startswith("error: "), p.stderr)
p = subprocess.run([BIN, "serve", "-m", MODEL, "--port", "99999"], capture_output=True, text=True, timeout=30)
check("bad port: usage error", p.returncode == 2, p.stderr)
p = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True, timeout=30)
check("--help", p.returncode == 0 and "usage: bitnet serve" in p.stdout)

# ---- nothing in the server logs from a sanitizer (ASan/UBSan/TSan builds) ----
for name in sorted(os.listdir(TMP)):
    if name.startswith("server-") and name.endswith(".log"):
        with open(os.path.join(TMP, name), errors="replace") as f:
            text = f.read()
        bad_lines = [ln for ln in text.splitlines() if "Sanitizer" in ln or "runtime error:" in ln]
        check("sanitizer-clean log " + name, not bad_lines, "\n".join(bad_lines[:5]))

print(f"{passes} passed, {fails} failed")
sys.exit(1 if fails else 0)
