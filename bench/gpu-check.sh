#!/usr/bin/env bash
# bench/gpu-check.sh - the Vulkan backend on a machine with a real GPU, in one go (a few
# minutes; the budget is 8): builds, runs the Vulkan op and graph tests on the GPU, generates
# the 2B-4T-shaped benchmark model, runs `bitnet bench` on it with the GPU, and prints the
# generation speed next to the GPU's memory-bandwidth roofline
# (roofline t/s = bandwidth / weight bytes read per generated token), plus a per-op GPU
# time profile of a short generation (BITNET_PROFILE_OPS=1).
#
# usage: bench/gpu-check.sh [options]
#   -B DIR     build folder (default: build-gpu; configured and built here)
#   -d DIR     where the model is generated and kept (default: /tmp/bitnet-gpu-check)
#   -D N       the Vulkan device (default: the first one that is not a CPU, e.g. lavapipe)
#   -p N -n N  prompt and generation lengths (default 128 and 64), -r N repetitions (3)
#   -s SHAPE   model shape (default 2b4t; tiny for a quick try of the script itself)
#   -S         skip the build (use an existing one)
#   -h         this help
# Environment: GPU_BW_GBPS overrides the bandwidth used for the roofline (the built-in
# table covers common data-centre and desktop GPUs; nvidia-smi is asked otherwise).
# Exit status: 0 when everything ran and the tests passed, 1 otherwise.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build="$root/build-gpu"
models=/tmp/bitnet-gpu-check
device=""
n_prompt=128
n_gen=64
reps=3
shape=2b4t
skip_build=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
while getopts "B:d:D:p:n:r:s:Sh" opt; do
    case $opt in
    B) build=$OPTARG ;;
    d) models=$OPTARG ;;
    D) device=$OPTARG ;;
    p) n_prompt=$OPTARG ;;
    n) n_gen=$OPTARG ;;
    r) reps=$OPTARG ;;
    s) shape=$OPTARG ;;
    S) skip_build=1 ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done

build=$(realpath -m "$build")
models=$(realpath -m "$models")
mkdir -p "$models"
t_start=$(date +%s)
step() { echo; echo "== $* ($(($(date +%s) - t_start)) s)"; }

# ---- build ----
if [ $skip_build -eq 0 ]; then
    step "build ($build)"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" -j"$(nproc)" --target bitnet_cli test_vulkan_ops test_vulkan_graph \
        2>&1 | grep -E "error|warning|glslc" | head -50 || true
fi
BIN=$build/bin/bitnet
for f in "$BIN" "$build/bin/test_vulkan_ops" "$build/bin/test_vulkan_graph"; do
    [ -x "$f" ] || { echo "error: $f was not built" >&2; exit 1; }
done

# ---- the device ----
step "devices"
"$BIN" devices 2>&1 | grep -A3 "^vulkan:" || true
if [ -z "$device" ]; then
    device=$("$BIN" devices 2>/dev/null | awk '/^vulkan:[0-9]+/ && $2 != "cpu" { sub("vulkan:", "", $1); print $1; exit }')
fi
if [ -z "$device" ]; then
    echo "error: no Vulkan GPU found (only CPU-type devices such as lavapipe, or none); use -D N to force one" >&2
    exit 1
fi
gpu_name=$("$BIN" devices 2>/dev/null | awk -v id="vulkan:$device" '$1 == id { $1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }')
echo "using vulkan:$device: $gpu_name"

# ---- tests on the GPU (validation layer on when it is installed) ----
status=0
for t in test_vulkan_ops test_vulkan_graph; do
    step "$t on vulkan:$device"
    rc=0
    (cd "$build/tests" && BITNET_VK_DEVICE=$device BITNET_VK_VALIDATE=1 "$build/bin/$t") \
        >"$models/$t.log" 2>&1 || rc=$?
    grep -E "OK|FAIL|ERROR|PASSED|SKIP|NMSE|vulkan:|validation|note" "$models/$t.log" | head -80 || true
    if [ $rc -ne 0 ]; then
        echo "FAIL: $t (exit $rc; full log $models/$t.log)"
        status=1
    fi
done

# ---- the benchmark model ----
step "model: $shape shape, I2_S ($models)"
M=$models/$shape-i2_s.gguf
[ -f "$M" ] || "$BIN" gen -o "$M" --shape "$shape" --type i2_s --seed 1

# ---- bitnet bench on the GPU ----
step "bitnet bench -p $n_prompt -n $n_gen -r $reps --devices vulkan:$device"
csv=$models/bench-vulkan$device.csv
"$BIN" bench -m "$M" -p "$n_prompt" -n "$n_gen" -r "$reps" --devices "vulkan:$device" -o csv \
    >"$csv" 2>"$models/bench.err" || { cat "$models/bench.err" >&2; status=1; }
grep -vE "^$" "$models/bench.err" | tail -5 || true

# ---- roofline ----
bandwidth_table() { # GB/s of the GPU's memory, from its name (vendor figures)
    case "$1" in
    *GH200*) echo 4000 ;;
    *H200*) echo 4800 ;;
    *H100*NVL*) echo 3900 ;;
    *H100*PCIe*) echo 2000 ;;
    *H100*) echo 3350 ;;
    *A100*80GB*PCIe* | *A100*PCIE*80*) echo 1935 ;;
    *A100*80*) echo 2039 ;;
    *A100*) echo 1555 ;;
    *L40S* | *L40*) echo 864 ;;
    *L4*) echo 300 ;;
    *A10G*) echo 600 ;;
    *A10*) echo 600 ;;
    *T4*) echo 320 ;;
    *V100*) echo 900 ;;
    *"RTX 5090"*) echo 1792 ;;
    *"RTX 4090"*) echo 1008 ;;
    *"RTX 4080"*) echo 717 ;;
    *"RTX 4070 Ti"*) echo 504 ;;
    *"RTX 4070"*) echo 504 ;;
    *"RTX 4060"*) echo 272 ;;
    *"RTX 3090"*) echo 936 ;;
    *"RTX 3080"*) echo 760 ;;
    *"RTX 3070"*) echo 448 ;;
    *"RTX 3060"*) echo 360 ;;
    *"RTX 6000 Ada"*) echo 960 ;;
    *"RTX A6000"*) echo 768 ;;
    *MI300X* | *"MI300 X"*) echo 5300 ;;
    *MI250*) echo 3277 ;;
    *MI210*) echo 1638 ;;
    *"7900 XTX"*) echo 960 ;;
    *"7900 XT"*) echo 800 ;;
    *"6900 XT"* | *"6800 XT"*) echo 512 ;;
    *"Arc"*"A770"*) echo 560 ;;
    *) echo "" ;;
    esac
}
bw=${GPU_BW_GBPS:-$(bandwidth_table "$gpu_name")}
bw_src="table"
[ -n "${GPU_BW_GBPS:-}" ] && bw_src="GPU_BW_GBPS"
if [ -z "$bw" ] && command -v nvidia-smi >/dev/null; then
    # memory clock (MHz) x bus width is not queryable everywhere; the name is
    name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
    bw=$(bandwidth_table "$name")
    bw_src="nvidia-smi name '$name'"
fi

step "result"
if [ ! -s "$csv" ]; then
    echo "no benchmark results"
    exit 1
fi
awk -F, -v bw="${bw:-0}" -v src="$bw_src" -v gpu="$gpu_name" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    {
        test = $col["test"]; ts = $col["avg_ts"]; sd = $col["stddev_ts"]
        bpt = $col["weight_bytes_per_token"]; be = $col["backend"]
        if (test ~ /^tg/ && bw > 0 && bpt > 0) {
            roof = bw * 1e9 / bpt
            printf "%-6s %10.2f +- %6.2f t/s   roofline %8.1f t/s (%s GB/s [%s] / %.3f GB per token)   %5.1f %% of roofline   [%s]\n",
                test, ts, sd, roof, bw, src, bpt / 1e9, 100 * ts / roof, be
        } else if (test ~ /^tg/) {
            printf "%-6s %10.2f +- %6.2f t/s   roofline unknown for \"%s\" (set GPU_BW_GBPS)   %.3f GB per token   [%s]\n",
                test, ts, sd, gpu, bpt / 1e9, be
        } else {
            printf "%-6s %10.2f +- %6.2f t/s   (prompt processing)   [%s]\n", test, ts, sd, be
        }
    }' "$csv"

# ---- where the GPU time goes ----
step "per-op GPU time of a 32-token generation"
BITNET_PROFILE_OPS=1 "$BIN" run -m "$M" --prompt-ids 1,2,3,4,5,6,7,8 -n 32 --temp 0 \
    --devices "vulkan:$device" 2>&1 >/dev/null | grep -A20 "op profile" || true

step "done"
[ $status -eq 0 ] && echo "all checks passed" || echo "some checks FAILED"
exit $status
