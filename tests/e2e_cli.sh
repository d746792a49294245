#!/usr/bin/env bash
# e2e_cli.sh - the bitnet command as a user meets it: --help on every
# subcommand, exit codes (0 ok, 1 error, 2 usage), "error: ..." messages on
# stderr, results on stdout, hostile input refused cleanly.
set -u
source "$(dirname "$0")/e2e_lib.sh"
BIN=$1
TMP=$2
mkdir -p "$TMP"

check "top-level help" 0 "usage: bitnet COMMAND" "$BIN" --help
check "no command" 2 "usage" "$BIN"
check "unknown command" 2 "unknown command" "$BIN" frobnicate
for c in run eval info gen; do
    check "$c --help" 0 "usage: bitnet $c" "$BIN" "$c" --help
done

M=$TMP/tiny.gguf
check "gen tiny" 0 "wrote" "$BIN" gen -o "$M" --shape tiny --type tq2_0 --seed 7
check "gen unknown shape" 2 "error: unknown shape" "$BIN" gen -o "$TMP/x.gguf" --shape huge --type i2_s
check "gen bad type" 2 "error: --type" "$BIN" gen -o "$TMP/x.gguf" --shape tiny --type q4_0
check "gen 3b as tq2_0" 1 "error: .*not a multiple" "$BIN" gen -o "$TMP/x.gguf" --shape 3b --type tq2_0
check "info" 0 "blk.1.ffn_down.weight +TQ2_0" "$BIN" info "$M"
check "info json" 0 '"architecture": "bitnet-b1.58"' "$BIN" info "$M" --json
check "info missing file" 1 "^error: cannot open" "$BIN" info "$TMP/none.gguf"
check "run text" 0 "generation: +8 tokens" "$BIN" run -m "$M" -p "the cat" -n 8 --seed 3
check "run ids" 0 "^[0-9]+( [0-9]+){3}$" "$BIN" run -m "$M" --prompt-ids 1,2,3 -n 4 --temp 0 --print-ids
check "run -temp alias" 0 "generation" "$BIN" run -m "$M" -p "hi" -n 2 -temp 0.5
check "run no prompt" 2 "error: give exactly one" "$BIN" run -m "$M"
check "run bad number" 2 "error: -n needs an integer" "$BIN" run -m "$M" -p x -n lots
check "run bad id" 1 "error: token id 5000 is out of range" "$BIN" run -m "$M" --prompt-ids 1,5000
check "run bad id list" 1 "error: --prompt-ids" "$BIN" run -m "$M" --prompt-ids 1,,2
check "prompt longer than context" 1 "error: the prompt has 9 tokens but the context holds 4" \
    "$BIN" run -m "$M" --prompt-ids 1,2,3,4,5,6,7,8,9 -c 4
check "context fills up" 0 "context \(8\) is full" "$BIN" run -m "$M" --prompt-ids 1,2,3 -c 8 -n 20 --temp 0
check "context beyond training" 1 "error: a context of 100000 tokens is larger than the 256" \
    "$BIN" run -m "$M" -p x -c 100000

# Ctrl-C: the first stops generation and prints the statistics (exit 130)
BIG=$TMP/125m.gguf
if "$BIN" gen -o "$BIG" --shape 125m --type i2_s --seed 1 2>/dev/null; then
    "$BIN" run -m "$BIG" -p "In the beginning" -n 400 -c 2048 --seed 1 >"$TMP/int.out" 2>"$TMP/int.err" &
    pid=$!
    for _ in $(seq 1 600); do # wait (at most 60 s) until generation has started
        grep -q "^plan:" "$TMP/int.err" 2>/dev/null && [ -s "$TMP/int.out" ] && break
        sleep 0.1
    done
    kill -INT $pid
    wait $pid
    rc=$?
    if [ $rc -eq 130 ] && grep -q "interrupted" "$TMP/int.err" && grep -q "^generation:" "$TMP/int.err"; then
        pass
    else
        fail "Ctrl-C: exit $rc"
        head -5 "$TMP/int.err"
    fi
    rm -f "$BIG"
fi
check "bad sampler value" 2 "error: .*top_p" "$BIN" run -m "$M" -p x --top-p 2
check "eval" 0 "wrote 3 x 1024 logits" "$BIN" eval -m "$M" --prompt-ids 1,2,3 --logits-out "$TMP/l.bin"
size=$(stat -c %s "$TMP/l.bin")
if [ "$size" -eq $((3 * 1024 * 4)) ]; then pass; else fail "logits file size $size"; fi
check "eval without output" 2 "logits-out" "$BIN" eval -m "$M" --prompt-ids 1

# hostile files
printf 'GGUF' >"$TMP/trunc.gguf"
check "truncated file" 1 "^error: " "$BIN" info "$TMP/trunc.gguf"
head -c 5000 "$M" >"$TMP/cut.gguf"
check "file cut in the metadata" 1 "^error: " "$BIN" run -m "$TMP/cut.gguf" -p x
head -c $(($(stat -c %s "$M") - 100)) "$M" >"$TMP/short.gguf"
check "file cut in the data" 1 "^error: .*(past|end|beyond|outside)" "$BIN" run -m "$TMP/short.gguf" -p x
printf 'not a model at all, just text\n' >"$TMP/text.gguf"
check "not a gguf" 1 "^error: " "$BIN" info "$TMP/text.gguf"
check "empty file" 1 "^error: " "$BIN" info /dev/null

finish
