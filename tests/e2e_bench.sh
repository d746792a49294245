#!/usr/bin/env bash
# e2e_bench.sh - `bitnet bench` and `bitnet gen --embd-type` as a user meets
# them: the md, json and csv reports have one row per (threads, test) with
# the model's figures, -p 0 / -n 0 skip a test, usage errors exit 2, a
# missing model exits 1. Speeds are not checked (benchmarks measure speed).
set -u
source "$(dirname "$0")/e2e_lib.sh"
BIN=$1
TMP=$2
mkdir -p "$TMP"

M=$TMP/tiny.gguf
Q=$TMP/tiny-q6k.gguf
check "bench --help" 0 "usage: bitnet bench" "$BIN" bench --help
check "gen" 0 "wrote" "$BIN" gen -o "$M" --shape tiny --type i2_s
check "gen --embd-type q6_k" 0 "wrote" "$BIN" gen -o "$Q" --shape tiny --type tq2_0 --embd-type q6_k
check "gen bad --embd-type" 2 "error: --embd-type" "$BIN" gen -o "$TMP/x.gguf" --shape tiny \
    --type i2_s --embd-type tq2_0
check "info shows Q6_K embedding" 0 "token_embd.weight +Q6_K" "$BIN" info "$Q"

"$BIN" bench -m "$M" -m "$Q" -p 8 -n 4 -t 1,2 -r 2 >"$TMP/md.txt" 2>"$TMP/md.err"
check "md exit" 0 "" test $? -eq 0
count "md header" 1 '^\| model \| size \| params \| type \| head \| backend \| threads \| test \| t/s \|$' "$TMP/md.txt"
count "md rows" 8 '^\| tiny(-q6k)?\.gguf \| [0-9.]+ MiB \| [0-9.]+ M \| (I2_S|TQ2_0) \| (F16|Q6_K) \| cpu:0 \| [12] \| (pp8|tg4) \| [0-9.]+ ± [0-9.]+ \|$' "$TMP/md.txt"
count "md q6k rows" 4 '^\| tiny-q6k.gguf \| .* \| TQ2_0 \| Q6_K \|' "$TMP/md.txt"
count "md rss line" 1 '^kernels: float [a-z0-9]+, ternary [a-z0-9-]+; peak RSS [0-9.]+ MB = largest model file' "$TMP/md.txt"

"$BIN" bench -m "$M" -p 8 -n 0 -t 1 -r 3 -o json >"$TMP/j.txt" 2>/dev/null
check "json exit" 0 "" test $? -eq 0
count "json one test" 1 '"test": "pp8"' "$TMP/j.txt"
count "json fields" 1 '"n_threads": 1, "n_batch": 8, "n_prompt": 8, "n_gen": 0' "$TMP/j.txt"
count "json samples" 1 '"samples_ts": \[[0-9.]+, [0-9.]+, [0-9.]+\]' "$TMP/j.txt"
count "json brackets" 2 '^[][]$' "$TMP/j.txt"
if command -v python3 >/dev/null; then
    check "json parses" 0 "ok" python3 -c "import json,sys; d=json.load(open(sys.argv[1])); \
assert len(d) == 1 and d[0]['avg_ts'] > 0 and d[0]['weight_bytes_per_token'] > 0; print('ok')" "$TMP/j.txt"
fi

"$BIN" bench -m "$M" -p 0 -n 3 -t 2 -r 1 -o csv >"$TMP/c.txt" 2>/dev/null
check "csv exit" 0 "" test $? -eq 0
count "csv header" 1 '^model,model_file,model_size,model_n_params,file_bytes,model_type,head_type,weight_bytes_per_token,backend,float_kernels,ternary_kernels,n_threads,' "$TMP/c.txt"
count "csv row" 1 '^tiny\.gguf,.*,I2_S,F16,[0-9]+,cpu:0,[a-z0-9]+,[a-z0-9-]+,2,[0-9]+,0,3,tg3,' "$TMP/c.txt"

BITNET_CPU_FLOAT=scalar "$BIN" bench -m "$M" -p 0 -n 2 -t 1 -r 1 -o csv >"$TMP/s.txt" 2>/dev/null
count "scalar float kernels" 1 ',cpu:0,scalar,[a-z0-9-]+,1,' "$TMP/s.txt"

check "no model" 2 "error: -m FILE is required" "$BIN" bench -p 8
check "nothing to measure" 2 "error: nothing to measure" "$BIN" bench -m "$M" -p 0 -n 0
check "bad format" 2 "error: -o must be md, json or csv" "$BIN" bench -m "$M" -o xml
check "bad thread list" 2 "error: -t needs a list" "$BIN" bench -m "$M" -t 1,,2
check "bad repetitions" 2 "error: -r needs an integer" "$BIN" bench -m "$M" -r 0
check "unknown option" 2 "error: unknown option" "$BIN" bench -m "$M" --frobnicate
check "missing model" 1 "^error: cannot open" "$BIN" bench -m "$TMP/none.gguf" -n 1 -p 0

finish
