#!/usr/bin/env bash
# bench/run.sh - the benchmark of record: generates the benchmark models,
# measures this machine's memory read bandwidth, runs `bitnet bench` on each
# model and prints one table: generation speed (tg), weight bytes read per
# generated token, and the fraction of the bandwidth roofline reached
# (roofline t/s = read bandwidth / bytes per token), plus prompt speed and
# peak memory. The machine may be shared and noisy: the bandwidth is measured
# again right before each model, and every ratio in the table is against
# that measurement, taken in the same run.
#
# ReLU^2 models (2b4t) are also run with BITNET_CPU_SPARSE=1: ffn_down then
# skips the weight columns of the zero activations after ReLU^2 (ternary
# kernels' column layout, off by default), so that column may exceed the
# dense roofline; the default run reads every weight.
#
# usage: bench/run.sh [options]
#   -B DIR       build folder with bin/bitnet and bin/bench_bandwidth (default: build)
#   -d DIR       where the models are generated and kept (default: bench/models)
#   -s SHAPES    shapes to run (default: "2b4t large 7b 13b"; 7b and 13b only when
#                the disk has room for them)
#   -v VARIANTS  weight variants (default: "i2_s tq2_0+q6_k": TYPE or TYPE+EMBD_TYPE)
#   -t LIST      thread counts (default 1,2)
#   -p N -n N    prompt and generation lengths (default 128 and 64)
#   -r N         repetitions (default 5)
#   -b NAME      bitnet bench --backend (default cpu: this is the CPU benchmark, and
#                auto would also load the GPU drivers, whose pages count in the RSS)
#   -h           this help
# Output: the table on stdout; the raw CSV of every bitnet bench run and the
# table are also written to DIR/results-DATE.{csv,md}.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build="$root/build"
models="$here/models"
shapes="2b4t large 7b 13b"
variants="i2_s tq2_0+q6_k"
threads="1,2"
n_prompt=128
n_gen=64
reps=5
backend=cpu

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
while getopts "B:d:s:v:t:p:n:r:b:h" opt; do
    case $opt in
    B) build=$(cd "$OPTARG" && pwd) ;;
    d) models=$OPTARG ;;
    s) shapes=$OPTARG ;;
    v) variants=$OPTARG ;;
    t) threads=$OPTARG ;;
    p) n_prompt=$OPTARG ;;
    n) n_gen=$OPTARG ;;
    r) reps=$OPTARG ;;
    b) backend=$OPTARG ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done

bitnet="$build/bin/bitnet"
bandwidth="$build/bin/bench_bandwidth"
for b in "$bitnet" "$bandwidth"; do
    [[ -x $b ]] || { echo "error: $b not found: build first (cmake --build $build -j2)" >&2; exit 1; }
done
mkdir -p "$models"
stamp=$(date +%Y%m%d-%H%M%S)
csv="$models/results-$stamp.csv"
md="$models/results-$stamp.md"

# Approximate file size in MB of a shape and variant (for the disk check).
approx_mb() {
    case $1 in
    2b4t) echo 1300 ;; large) echo 400 ;; 7b) echo 2200 ;; 13b) echo 3800 ;; *) echo 2000 ;;
    esac
}

free_mb() { df -Pm "$models" | awk 'NR == 2 { print $4 }'; }

# ---- machine ----
{
    echo "## Machine and command"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) logical CPUs; $(lscpu | sed -n 's/^L3 cache: *//p' | head -1) L3"
    echo "- memory: $(free -g | awk '/^Mem:/ { print $2 }') GiB; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- command: bench/run.sh -s \"$shapes\" -v \"$variants\" -t $threads -p $n_prompt -n $n_gen -r $reps -b $backend"
    echo
} | tee "$md"

# ---- models ----
declare -a files=()
for shape in $shapes; do
    for v in $variants; do
        type=${v%%+*}
        embd=""
        [[ $v == *+* ]] && embd=${v#*+}
        f="$models/$shape-$type${embd:+-$embd}.gguf"
        if [[ ! -s $f ]]; then
            need=$(($(approx_mb "$shape") + 2048))
            if ((need > $(free_mb))); then
                echo "note: skipping $shape $v: about $need MB needed, $(free_mb) MB free" >&2
                continue
            fi
            echo "generating $f ..." >&2
            "$bitnet" gen -o "$f.tmp" --shape "$shape" --type "$type" ${embd:+--embd-type "$embd"} >&2
            mv "$f.tmp" "$f"
        fi
        files+=("$f")
    done
done
((${#files[@]})) || { echo "error: no model to run" >&2; exit 1; }

# ---- runs ----
: >"$csv"
header_done=0
declare -A bw=()
# The read bandwidth for thread count $1, kept as the largest of what it was
# before and after the run it brackets: bench_bandwidth with 4 KiB pages and
# with huge pages (-H; the model mapping gets huge pages when the file is
# cached in large folios, core/os.c), so the roofline is the stricter one.
measure_bw() {
    local t=$1 g
    for opt in "" -H; do
        g=$("$bandwidth" -q -t "$t" -r 3 $opt | awk '{ print $2 }')
        if [[ -z ${bw[$t]:-} ]] || awk -v a="$g" -v b="${bw[$t]}" 'BEGIN { exit !(a > b) }'; then
            bw[$t]=$g
        fi
    done
}
run_bench() { # FILE THREADS [env...]: bitnet bench's CSV (header line, then rows)
    local f=$1 t=$2
    shift 2
    env "$@" "$bitnet" bench -m "$f" -p "$n_prompt" -n "$n_gen" -t "$t" -r "$reps" \
        --backend "$backend" -o csv 2>/dev/null
}
label_rows() { # LABEL CSV: the rows of CSV as "LABEL,<row>"; the file gets the header once
    if ((!header_done)); then echo "label,read_gbps,$(head -1 <<<"$2")" >>"$csv"; header_done=1; fi
    rows+=$(tail -n +2 <<<"$2" | sed "s/^/$1,/")$'\n'
}
for f in "${files[@]}"; do
    echo "running $f ..." >&2
    relu2=0
    grep -qF 'relu^2' <<<"$("$bitnet" info "$f" 2>/dev/null || true)" && relu2=1
    for t in ${threads//,/ }; do
        bw=()
        rows=
        measure_bw "$t"
        label_rows default "$(run_bench "$f" "$t")"
        ((relu2)) && label_rows sparse "$(run_bench "$f" "$t" BITNET_CPU_SPARSE=1)"
        measure_bw "$t"
        echo "  $t threads: read bandwidth ${bw[$t]} GB/s (largest before and after)" >&2
        sed -n "s/^\([a-z]*\),/\1,${bw[$t]},/p" <<<"$rows" >>"$csv"
    done
done

# ---- table ----
# csv: label, read_gbps, then bitnet bench's columns; found by name in the header line
{
    echo "## Results"
    echo
    echo "| model | type | head | threads | read GB/s | weights GB/token | roofline t/s | tg t/s | % roofline | tg t/s, ReLU² skip | % dense roofline, skip | pp t/s | pp / tg | peak RSS MB | RSS - file - KV, MB |"
    echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    awk -F, '
    NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
    {
        key = $c["model"] "," $c["n_threads"]
        if (!(key in seen)) { seen[key] = 1; order[++n] = key }
        model[key] = $c["model"]; type[key] = $c["model_type"]; head[key] = $c["head_type"]
        thr[key] = $c["n_threads"]; bpt[key] = $c["weight_bytes_per_token"]
        if ($1 == "default") bwv[key] = $2
        v = $c["avg_ts"]; sd = $c["stddev_ts"]
        if ($c["test"] ~ /^tg/) {
            if ($1 == "default") { tg[key] = v; tgsd[key] = sd } else { tgs[key] = v; tgssd[key] = sd }
        } else if ($1 == "default") { pp[key] = v; ppsd[key] = sd }
        r = $c["peak_rss_bytes"]
        if ($1 == "default" && r > rss[key]) { rss[key] = r; extra[key] = r - $c["file_bytes"] - $c["kv_bytes"] }
    }
    END {
        for (i = 1; i <= n; i++) {
            k = order[i]
            roof = bwv[k] * 1e9 / bpt[k]
            skip = (k in tgs) ? sprintf("%.2f ± %.2f", tgs[k], tgssd[k]) : "-"
            skipp = (k in tgs) ? sprintf("%.0f %%", 100 * tgs[k] / roof) : "-"
            ratio = (k in tg && tg[k] > 0 && (k in pp)) ? sprintf("%.1fx", pp[k] / tg[k]) : "-"
            printf "| %s | %s | %s | %s | %.1f | %.3f | %.1f | %.2f ± %.2f | %.0f %% | %s | %s | %.2f ± %.2f | %s | %.0f | %.0f |\n",
                model[k], type[k], head[k], thr[k], bwv[k], bpt[k] / 1e9, roof, tg[k], tgsd[k],
                100 * tg[k] / roof, skip, skipp, pp[k], ppsd[k], ratio, rss[k] / 1e6, extra[k] / 1e6
        }
    }' "$csv"
    echo
    echo "tg = tg$n_gen, pp = pp$n_prompt, mean ± stddev over $reps runs after a warm-up. Roofline = read bandwidth"
    echo "(bench_bandwidth right before and right after the runs of that thread count, 4 KiB and huge pages:"
    echo "the largest of the four) / weight bytes per token. \"ReLU² skip\": BITNET_CPU_SPARSE=1."
    echo "Peak RSS is ru_maxrss of the bitnet bench process of that thread count."
} | tee -a "$md"
echo >&2
echo "raw results: $csv; table: $md" >&2
