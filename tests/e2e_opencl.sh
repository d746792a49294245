#!/usr/bin/env bash
# e2e_opencl.sh - the OpenCL backend through the bitnet command, on a generated
# tiny model: `bitnet devices` lists opencl:0 (and says why when there is no
# OpenCL platform); `eval` with --backend opencl and with --devices splits
# (cpu/opencl, cpu/opencl/vulkan when Vulkan has a device) gives the logits of
# --backend cpu (NMSE <= 1e-5, top-1 agreement >= 99 % of positions); greedy
# `run` gives the same tokens (also on the demo model, $BITNET_DEMO_MODEL or
# models/demo.gguf, when it exists); bad device ids are refused.
# Skips (77) when the command has no --backend/--devices or there is no
# OpenCL device.
set -u
source "$(dirname "$0")/e2e_lib.sh"
BIN=$1
TMP=$2
mkdir -p "$TMP"
# compiled kernels are cached next to the C tests' cache (warm after a first run)
export XDG_CACHE_HOME="$(dirname "$TMP")/opencl_cache"

help=$("$BIN" eval --help 2>&1)
if ! grep -q -- "--backend" <<<"$help" || ! grep -q -- "--devices" <<<"$help"; then
    skip "bitnet eval has no --backend/--devices options yet"
fi
devs=$("$BIN" devices --no-measure 2>&1)
if ! grep -q "^opencl:0" <<<"$devs"; then
    skip "no OpenCL device: $(grep -m1 "^opencl" <<<"$devs")"
fi
grep -q "^vulkan:0" <<<"$devs" && have_vulkan=1 || have_vulkan=0

# no OpenCL platform at all (the ICD loader finds no vendor): a clear message
mkdir -p "$TMP/no_icd"
out=$(OCL_ICD_VENDORS="$TMP/no_icd" "$BIN" devices --no-measure 2>&1)
if grep -q "^opencl .*no device: no OpenCL platform found" <<<"$out"; then pass; else
    fail "devices without a platform: $(grep -m1 opencl <<<"$out")"
fi

M=$TMP/tiny.gguf
"$BIN" gen -o "$M" --shape tiny --type i2_s --seed 9 >/dev/null 2>&1 || abort "gen"
V=1024 # tiny's vocabulary
IDS=$(seq -s, 1 37 | sed 's/,$//')

out=$(OCL_ICD_VENDORS="$TMP/no_icd" "$BIN" eval -m "$M" --prompt-ids 1,2 --logits-out "$TMP/x.bin" \
    --backend opencl 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && grep -qi "error: .*opencl" <<<"$out"; then pass; else
    fail "--backend opencl without a platform: exit $rc: $(tail -1 <<<"$out")"
fi

# logits of a 37-token prompt in batches of 8 (prefill kernels, then a short last batch)
logits() { # name, device options...
    local name=$1
    shift
    if ! "$BIN" eval -m "$M" --prompt-ids "$IDS" -b 8 --logits-out "$TMP/$name.bin" "$@" \
        >"$TMP/$name.log" 2>&1; then
        fail "eval $name: $(tail -2 "$TMP/$name.log")"
        return 1
    fi
}

# NMSE and top-1 agreement of two logits files (f32, V per position)
compare() { # name, got, want
    local res
    res=$(paste <(od -An -v -f -w4 "$2") <(od -An -v -f -w4 "$3") | awk -v V=$V '
        { a = $1 + 0; b = $2 + 0; num += (a - b) ^ 2; den += b ^ 2
          i = (NR - 1) % V
          if (i == 0 || a > ba) { ba = a; ia = i }
          if (i == 0 || b > bb) { bb = b; ib = i }
          if (i == V - 1) { pos++; agree += (ia == ib) } }
        END { nmse = den > 0 ? num / den : num
              printf "%s NMSE %.3g, top-1 %d/%d\n", (nmse <= 1e-5 && agree * 100 >= 99 * pos && pos > 0) ? "ok" : "bad", nmse, agree, pos }')
    echo "$1: $res"
    if [[ $res == ok* ]]; then pass; else fail "$1: $res"; fi
}

ran_on() { # name, device: the plan printed by eval names the device
    if grep -q "$2" "$TMP/$1.log"; then pass; else fail "$1: the plan does not mention $2"; fi
}

logits cpu --backend cpu || finish
if logits ocl --backend opencl; then
    compare "--backend opencl" "$TMP/ocl.bin" "$TMP/cpu.bin"
    ran_on ocl opencl:0
fi
if logits split2 --devices cpu:0,opencl:0 --tensor-split 1,1; then
    compare "--devices cpu:0,opencl:0" "$TMP/split2.bin" "$TMP/cpu.bin"
    ran_on split2 opencl:0
fi
if logits only --devices opencl:0; then
    compare "--devices opencl:0" "$TMP/only.bin" "$TMP/cpu.bin"
fi
if [ "$have_vulkan" = 1 ]; then
    if logits split3 --devices cpu:0,opencl:0,vulkan:0 --tensor-split 1,1,1; then
        compare "--devices cpu:0,opencl:0,vulkan:0" "$TMP/split3.bin" "$TMP/cpu.bin"
        ran_on split3 vulkan:0
    fi
else
    echo "note: no Vulkan device; the cpu/opencl/vulkan split is not checked"
fi

# greedy generation: the same tokens on every device set
greedy() { # model, device options...
    local m=$1
    shift
    "$BIN" run -m "$m" --prompt-ids 5,17,300,2 -n 24 --temp 0 --print-ids "$@" 2>/dev/null
}
want=$(greedy "$M" --backend cpu)
for opts in "--backend opencl" "--devices cpu:0,opencl:0 --tensor-split 1,1"; do
    # shellcheck disable=SC2086
    got=$(greedy "$M" $opts)
    if [ -n "$want" ] && [ "$got" = "$want" ]; then pass; else
        fail "greedy $opts: '$got', cpu: '$want'"
    fi
done
DEMO=${BITNET_DEMO_MODEL:-$(dirname "$0")/../models/demo.gguf}
if [ -f "$DEMO" ]; then
    want=$(greedy "$DEMO" --backend cpu)
    got=$(greedy "$DEMO" --backend opencl)
    if [ -n "$want" ] && [ "$got" = "$want" ]; then pass; else
        fail "demo model greedy: opencl '$got', cpu '$want'"
    fi
else
    echo "note: no demo model ($DEMO); its greedy output is not checked"
fi

# bad device ids
out=$("$BIN" eval -m "$M" --prompt-ids 1,2 --logits-out "$TMP/x.bin" --devices opencl:7 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && grep -q "opencl:7" <<<"$out"; then pass; else
    fail "--devices opencl:7: exit $rc: $(tail -1 <<<"$out")"
fi
finish
