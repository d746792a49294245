#!/usr/bin/python3
"""compare_logits.py - compares the engine's logits with a reference fixture (standard library
only, for tests/e2e_convert.sh).

  compare_logits.py FIXTURE.bin PROMPT_INDEX ENGINE_LOGITS.f32 [TOL]

FIXTURE is what tools/train/reference.py logits writes; ENGINE_LOGITS is `bitnet eval
--logits-out` output for the same prompt ids (print them with: compare_logits.py FIXTURE.bin
PROMPT_INDEX --ids). Passes when the top-1 token agrees at every position and max |difference|
is at most TOL (default 0.01) times the range of the reference logits."""
import struct
import sys


def load(path):
    d = open(path, "rb").read()
    if d[:8] != b"BNREF1\0\0":
        raise SystemExit("%s: not a reference fixture" % path)
    n, V = struct.unpack_from("<II", d, 8)
    off, out = 16, []
    for _ in range(n):
        (t,) = struct.unpack_from("<I", d, off)
        off += 4
        ids = list(struct.unpack_from("<%di" % t, d, off))
        off += 4 * t
        lg = struct.unpack_from("<%df" % (t * V), d, off)
        off += 4 * t * V
        out.append((ids, [lg[i * V:(i + 1) * V] for i in range(t)]))
    return V, out


def main():
    V, prompts = load(sys.argv[1])
    ids, ref = prompts[int(sys.argv[2])]
    if sys.argv[3] == "--ids":
        print(",".join(map(str, ids)))
        return 0
    tol = float(sys.argv[4]) if len(sys.argv) > 4 else 0.01
    raw = open(sys.argv[3], "rb").read()
    if len(raw) != 4 * V * len(ids):
        print("engine logits: %d bytes, expected %d" % (len(raw), 4 * V * len(ids)))
        return 1
    eng = struct.unpack("<%df" % (V * len(ids)), raw)
    lo = min(min(r) for r in ref)
    hi = max(max(r) for r in ref)
    worst, bad_top = 0.0, []
    for i, r in enumerate(ref):
        e = eng[i * V:(i + 1) * V]
        worst = max(worst, max(abs(a - b) for a, b in zip(r, e)))
        if max(range(V), key=r.__getitem__) != max(range(V), key=e.__getitem__):
            bad_top.append(i)
    ok = not bad_top and worst <= tol * (hi - lo)
    print("%s: %d positions, max |diff| %.5f = %.3f%% of the range %.3f, top-1 differs at %s" %
          ("ok" if ok else "FAIL", len(ids), worst, 100 * worst / (hi - lo), hi - lo, bad_top or "none"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
