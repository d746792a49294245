#!/usr/bin/env bash
# e2e_devices.sh - the device options and the devices/plan commands as a user
# meets them: `bitnet plan` on the committed desktop profile for every shape
# the README shows, the NPU slot, bad options (exit 2), missing devices (exit
# 1), and `bitnet eval` on cpu:0 alone against a cpu:0/cpu:1 split (the
# logits files must be byte-identical), and `bitnet perplexity` likewise.
set -u
source "$(dirname "$0")/e2e_lib.sh"
BIN=$1
TMP=$2
SRC=$(cd "$(dirname "$0")/.." && pwd)
PROFILE=$SRC/bench/profiles/desktop-rx7600.json
mkdir -p "$TMP"
export BITNET_CACHE_DIR=$TMP/cache # never the user's cache

check "devices --help" 0 "usage: bitnet devices" "$BIN" devices --help
check "plan --help" 0 "usage: bitnet plan" "$BIN" plan --help
check "run --help lists device options" 0 "--tensor-split" "$BIN" run --help
check "devices from a profile" 0 "vulkan:0 +dgpu +AMD Radeon RX 7600" "$BIN" devices --profile "$PROFILE"
check "devices --json" 0 '"id":[[:space:]]+"cpu:0"' "$BIN" devices --json --no-measure

for s in 2b4t 8b; do
    check "plan $s: all layers on the GPU" 0 "vulkan:0 +dgpu +all [0-9]+ layers" \
        "$BIN" plan --shape "$s" --profile "$PROFILE"
done
for s in 70b 100b; do
    check "plan $s: the GPU filled" 0 "on vulkan:0: [0-9.]+ GiB of 7.2 GiB \(full\)" \
        "$BIN" plan --shape "$s" --profile "$PROFILE"
done
check "plan --gpu-layers" 0 "layers 0-3 \+ embedding on vulkan:0|vulkan:0 .*layers? [0-9]" \
    "$BIN" plan --shape 2b4t --profile "$PROFILE" --gpu-layers 4
check "plan --gpu-mem" 0 "on vulkan:0: [0-9.]+ GiB of 1.0 GiB \(full\)" "$BIN" plan --shape 2b4t --profile "$PROFILE" --gpu-mem 1100M
check "plan --backend cpu" 0 "all 72 layers \+ embedding \+ output head on cpu:0" \
    "$BIN" plan --shape 100b --profile "$PROFILE" --backend cpu
check "plan --json" 0 '"tokens_per_s"' "$BIN" plan --shape 8b --profile "$PROFILE" --json
check "plan --tensor-split" 0 "layers 0-14 \+ embedding on cpu:0.*layers 15-29 \+ output head on vulkan:0" \
    "$BIN" plan --shape 2b4t --profile "$PROFILE" --devices cpu:0,vulkan:0 --tensor-split 1,1
check "plan split too big" 1 "error: --tensor-split puts .* on vulkan:0" \
    "$BIN" plan --shape 100b --profile "$PROFILE" --devices cpu:0,vulkan:0 --tensor-split 1,1

# the NPU slot: no device without a profile; planned with one
check "npu without runtime" 1 "no NPU runtime found" "$BIN" plan --shape tiny --backend npu
NPU=$TMP/npu.json
cat >"$NPU" <<'EOF'
{"devices": [
 {"id": "cpu:0", "type": "cpu", "memory": "32G",
  "profile": {"ternary_gbps": 30, "float_gflops": 300, "h2d_gbps": 20, "d2h_gbps": 20,
              "latency_us": 1, "dispatch_us": 1}},
 {"id": "npu:0", "name": "synthetic NPU", "type": "npu", "memory": "16G",
  "profile": {"ternary_gbps": 90, "float_gflops": 4000, "h2d_gbps": 20, "d2h_gbps": 20,
              "latency_us": 20, "dispatch_us": 10}}]}
EOF
check "plan with an NPU profile" 0 "npu:0 +npu +all 30 layers" "$BIN" plan --shape 2b4t --profile "$NPU"

# bad options: usage errors
check "bad --backend" 2 "error: --backend must be" "$BIN" plan --shape tiny --backend tpu
check "bad --devices" 2 "error: --devices needs" "$BIN" plan --shape tiny --devices gpu
check "bad --gpu-mem" 2 "error: --gpu-mem needs" "$BIN" plan --shape tiny --gpu-mem lots
check "bad --tensor-split" 2 "error: --tensor-split" "$BIN" plan --shape tiny --tensor-split 1,x
check "bad --gpu-layers" 2 "error: --gpu-layers needs" "$BIN" run --prompt-ids 1 --gpu-layers -1
check "missing profile file" 1 "error: cannot open the profile file" "$BIN" plan --shape tiny --profile "$TMP/none.json"
check "plan without a model" 2 "error: give exactly one" "$BIN" plan

# running: a missing device is an error; a split gives the same logits
M=$TMP/tiny.gguf
check "gen" 0 "wrote" "$BIN" gen -o "$M" --shape tiny --type i2_s --seed 3
check "run --devices cpu:7" 1 "error: --devices: no device cpu:7" "$BIN" run -m "$M" --prompt-ids 1,2 -n 1 --devices cpu:7
check "run --backend npu" 1 "error: --backend npu: no npu device" "$BIN" run -m "$M" --prompt-ids 1,2 -n 1 --backend npu
check "run says where it runs" 0 "plan: all 2 layers \+ embedding \+ output head on cpu:0" \
    "$BIN" run -m "$M" --prompt-ids 1,2 -n 2 --backend cpu
check "eval on cpu:0" 0 "wrote" "$BIN" eval -m "$M" --prompt-ids 1,300,45,977,12 --logits-out "$TMP/a.bin" --backend cpu
check "eval on cpu:0 + cpu:1" 0 "layer 0 \+ embedding on cpu:0.*layer 1 \+ output head on cpu:1" \
    "$BIN" eval -m "$M" --prompt-ids 1,300,45,977,12 --logits-out "$TMP/b.bin" --devices cpu:0,cpu:1 --tensor-split 1,1
check "run on a profiled NPU falls back" 0 "npu:0: not on this machine .*running on the CPU" \
    "$BIN" run -m "$M" --prompt-ids 1,2 -n 2 --profile "$NPU" --backend npu
if cmp -s "$TMP/a.bin" "$TMP/b.bin"; then
    pass
else
    fail "logits of the cpu:0/cpu:1 split differ from cpu:0 alone"
fi
# perplexity takes the same device options: the split scores the same text to the same PPL
seq 3 40 | tr '\n' ' ' >"$TMP/ppl.ids"
check "perplexity --help lists device options" 0 "--tensor-split" "$BIN" perplexity --help
check "perplexity --devices cpu:7" 1 "error: --devices: no device cpu:7" \
    "$BIN" perplexity -m "$M" --token-ids "$TMP/ppl.ids" -c 16 --devices cpu:7
p1=$("$BIN" perplexity -m "$M" --token-ids "$TMP/ppl.ids" -c 16 --backend cpu 2>/dev/null | grep "PPL =")
p2=$("$BIN" perplexity -m "$M" --token-ids "$TMP/ppl.ids" -c 16 --devices cpu:0,cpu:1 \
    --tensor-split 1,1 2>"$TMP/ppl2.err" | grep "PPL =")
if [ -n "$p1" ] && [ "$p1" = "$p2" ] && grep -q "output head on cpu:1" "$TMP/ppl2.err"; then
    pass
else
    fail "perplexity on cpu:0 ('$p1') and split over cpu:0 + cpu:1 ('$p2'; $(grep plan "$TMP/ppl2.err"))"
fi

finish
