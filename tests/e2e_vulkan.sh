#!/usr/bin/env bash
# e2e_vulkan.sh - the bitnet command on the Vulkan backend, against --backend cpu, on a
# generated tiny model (and the demo model when it is there), with the validation layer on:
#  - eval: logits of --backend vulkan and of a CPU/Vulkan split (--devices + --tensor-split,
#    both orders) within NMSE 1e-5 of --backend cpu, same top-1 at >= 99 % of positions;
#  - run: the same greedy tokens;
#  - a device that does not exist, and a machine without a Vulkan driver (hidden with
#    VK_DRIVER_FILES): --backend vulkan fails with a clear message, --backend auto runs
#    on the CPU and says why;
#  - no validation-layer message anywhere.
# Usage: bash e2e_vulkan.sh BIN TMPDIR. Exit 77 (skipped) when the command has no
# --backend option or the machine no Vulkan device.
set -u
source "$(dirname "$0")/e2e_lib.sh"
BIN=$1
TMP=$2
mkdir -p "$TMP"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export BITNET_VK_VALIDATE=${BITNET_VK_VALIDATE:-1}
E2E_REJECT='\(validation\)' # check(): validation-layer messages fail a check

if ! "$BIN" run --help 2>&1 | grep -q -- "--backend"; then
    skip "'bitnet run' has no --backend option in this build"
fi

M=$TMP/tiny.gguf
"$BIN" gen -o "$M" --shape tiny --type i2_s --seed 5 >/dev/null 2>&1 || abort "cannot generate the tiny model"
IDS=$(seq -s, 1 7 250) # 36 prompt positions

# ---- no Vulkan driver: hide every ICD from the loader ----
nodrv=(env VK_DRIVER_FILES="$TMP/none.json" VK_ICD_FILENAMES="$TMP/none.json")
check "--backend vulkan without a driver" 1 "^error: .*vulkan" \
    "${nodrv[@]}" "$BIN" run -m "$M" --prompt-ids 1,2,3 -n 2 --temp 0 --backend vulkan
out=$("${nodrv[@]}" "$BIN" run -m "$M" --prompt-ids 1,2,3 -n 2 --temp 0 --backend auto 2>&1)
rc=$?
if [ $rc -ne 0 ] || ! grep -q "cpu:0" <<<"$out" || ! grep -qi "vulkan: no Vulkan" <<<"$out"; then
    fail "--backend auto without a driver should run on the CPU and say why; exit $rc:"
    echo "$out" | tail -5
else
    pass
fi

if ! "$BIN" devices 2>/dev/null | grep -q "^vulkan:0"; then
    summary || exit 1
    skip "no Vulkan device (the no-driver checks above ran)"
fi
"$BIN" devices 2>/dev/null | grep -A1 "^vulkan:0"

# ---- logits: NMSE and top-1 agreement against the CPU ----
V=$("$BIN" info "$M" 2>/dev/null | grep -oE "vocab[^0-9]*[0-9]+" | grep -oE "[0-9]+$" | head -1)
V=${V:-1024}
compare_logits() { # name ref got
    od -An -v -f "$2" | tr -s ' ' '\n' | grep -v '^$' >"$TMP/a.txt"
    od -An -v -f "$3" | tr -s ' ' '\n' | grep -v '^$' >"$TMP/b.txt"
    local res
    res=$(paste "$TMP/a.txt" "$TMP/b.txt" | awk -v V="$V" '
        { i = NR - 1; d = $2 - $1; num += d * d; den += $1 * $1
          r = int(i / V)
          if (i % V == 0 || $1 > ba[r]) { ba[r] = $1; ia[r] = i % V }
          if (i % V == 0 || $2 > bb[r]) { bb[r] = $2; ib[r] = i % V }
          n = r + 1 }
        END { agree = 0; for (k = 0; k < n; k++) agree += (ia[k] == ib[k])
              printf "%.3g %d %d\n", (den > 0 ? num / den : num), agree, n }')
    local nmse agree rows
    read -r nmse agree rows <<<"$res"
    echo "$1: logits NMSE $nmse, top-1 agreement $agree/$rows"
    if [ -z "$rows" ] || [ "$rows" -eq 0 ] ||
        ! awk -v e="$nmse" -v a="$agree" -v n="$rows" 'BEGIN { exit !(e <= 1e-5 && a >= 0.99 * n) }'; then
        fail "$1: NMSE $nmse (limit 1e-5), top-1 $agree/$rows (limit 99 %)"
    else
        pass
    fi
}

check "eval --backend cpu" 0 "wrote" "$BIN" eval -m "$M" --prompt-ids "$IDS" --logits-out "$TMP/cpu.bin" --backend cpu
check "eval --backend vulkan" 0 "wrote" "$BIN" eval -m "$M" --prompt-ids "$IDS" --logits-out "$TMP/vk.bin" --backend vulkan
compare_logits "--backend vulkan" "$TMP/cpu.bin" "$TMP/vk.bin"
for devs in cpu:0,vulkan:0 vulkan:0,cpu:0; do
    check "eval --devices $devs" 0 "wrote" "$BIN" eval -m "$M" --prompt-ids "$IDS" \
        --logits-out "$TMP/split.bin" --devices "$devs" --tensor-split 1,1
    compare_logits "--devices $devs --tensor-split 1,1" "$TMP/cpu.bin" "$TMP/split.bin"
done

# ---- greedy generation: the same tokens ----
gen_ids() {
    "$BIN" run -m "$M" --prompt-ids 5,9,200,31 -n 24 --temp 0 --print-ids "$@" 2>"$TMP/run.err"
}
want=$(gen_ids --backend cpu)
for opts in "--backend vulkan" "--devices cpu:0,vulkan:0 --tensor-split 1,1" \
    "--devices vulkan:0,cpu:0 --tensor-split 1,1" "--backend vulkan -b 2"; do
    # shellcheck disable=SC2086
    got=$(gen_ids $opts)
    if [ -z "$want" ] || [ "$got" != "$want" ]; then
        fail "run $opts: greedy ids '$got', --backend cpu gave '$want'"
        tail -3 "$TMP/run.err"
    elif grep -q "(validation)" "$TMP/run.err"; then
        fail "run $opts: validation-layer messages"
    else
        pass
    fi
done
check "--backend vulkan says where it runs" 0 "vulkan:0" \
    "$BIN" run -m "$M" --prompt-ids 1,2 -n 2 --temp 0 --backend vulkan
check "a Vulkan device that does not exist" 1 "error: .*vulkan:7" \
    "$BIN" run -m "$M" --prompt-ids 1,2 -n 2 --devices vulkan:7,cpu:0

# ---- the demo model, when it is there: the same greedy text ----
DEMO=$ROOT/models/demo.gguf
if [ -f "$DEMO" ]; then
    a=$("$BIN" run -m "$DEMO" -p "Once upon a time" -n 32 --temp 0 --backend cpu 2>/dev/null)
    b=$("$BIN" run -m "$DEMO" -p "Once upon a time" -n 32 --temp 0 --backend vulkan 2>/dev/null)
    if [ -n "$a" ] && [ "$a" = "$b" ]; then pass; else fail "demo model: greedy text differs"; fi
else
    echo "note: $DEMO is not there; the demo-model check did not run"
fi

finish
