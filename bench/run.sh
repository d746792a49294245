#!/usr/bin/env bash
# bench/run.sh - the benchmark of record: generates the benchmark models,
# measures this machine's memory read bandwidth, runs `bitnet bench` on each
# model and prints one table: generation speed (tg), weight bytes read per
# generated token, and the fraction of the bandwidth roofline reached
# (roofline t/s = read bandwidth / bytes per token), plus prompt speed and
# peak memory. Each model's cached pages are dropped before its runs, so its
# mapping gets huge pages whatever touched the file last (fresh_cache below). The machine may be shared and noisy: every run of bitnet bench
# is bracketed by bandwidth measurements (4 KiB and huge pages, right before
# and right after it), and its ratio is against the largest of those.
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
#   -r N         runs per model and thread count (default 5), each of bitnet bench -r 1
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
# The read bandwidth for thread count $1 (bw[$1]), kept as the largest of all
# measurements since it was reset: bench_bandwidth with 4 KiB pages and with
# huge pages (-H; a model mapping gets huge pages when the file is cached in
# large folios, core/os.c). Each run of bitnet bench is bracketed by two such
# measurements, so the roofline of each run is the stricter of what the
# machine gave just before and just after it (the second vCPU of this VM
# gives 35 or 60 GB/s depending on where the host runs it).
measure_bw() {
    local t=$1 g
    for opt in "" -H; do
        g=$("$bandwidth" -q -t "$t" -r 3 $opt | awk '{ print $2 }')
        if [[ -z ${bw[$t]:-} ]] || awk -v a="$g" -v b="${bw[$t]}" 'BEGIN { exit !(a > b) }'; then
            bw[$t]=$g
        fi
    done
}
# One run (FILE THREADS LABEL [env...]): bitnet bench -r 1 between two
# bandwidth measurements; its rows go to the CSV as "LABEL,GB/s,<row>".
run_once() {
    local f=$1 t=$2 label=$3 out
    shift 3
    bw=()
    measure_bw "$t"
    out=$(env "$@" "$bitnet" bench -m "$f" -p "$n_prompt" -n "$n_gen" -t "$t" -r 1 \
        --backend "$backend" -o csv 2>/dev/null)
    measure_bw "$t"
    if ((!header_done)); then echo "label,read_gbps,$(head -1 <<<"$out")" >>"$csv"; header_done=1; fi
    tail -n +2 <<<"$out" | sed "s/^/$label,${bw[$t]},/" >>"$csv"
}
# Drops the cached pages of model $1 (those no process maps), so that the first
# run's mapping, which asks for huge pages (core/os.c), reads the file back in
# 2 MiB folios, as after a reboot. A file read or written in small pieces
# (cp, cat, a download) stays cached in small folios, its mapping gets 4 KiB
# pages, and decode then reads its weights about 25 % slower here: the runs
# would depend on how the file was last touched.
fresh_cache() {
    dd if="$1" iflag=nocache count=0 status=none 2>/dev/null ||
        echo "note: could not drop the cached pages of $1" >&2
}
huge_file_mb() { awk '/^FileHugePages:/ { printf "%d", $2 / 1024 }' /proc/meminfo; }
for f in "${files[@]}"; do
    echo "running $f ..." >&2
    fresh_cache "$f"
    huge0=$(huge_file_mb)
    relu2=0
    grep -qF 'relu^2' <<<"$("$bitnet" info "$f" 2>/dev/null || true)" && relu2=1
    for t in ${threads//,/ }; do
        for ((i = 1; i <= reps; i++)); do
            run_once "$f" "$t" default
            ((relu2)) && run_once "$f" "$t" sparse BITNET_CPU_SPARSE=1
            echo "  $t threads, run $i of $reps: read bandwidth ${bw[$t]} GB/s" >&2
            if [[ -n ${huge0:-} ]]; then
                echo "  page cache: $(($(huge_file_mb) - huge0)) MB more in huge folios after the first run ($(($(stat -c %s "$f") / 1000000)) MB file)" >&2
                huge0=""
            fi
        done
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
    # per (model, threads): lists of per-run values, one run per row
    function add(name, k, v) { n_[name, k]++; s_[name, k] += v; q_[name, k] += v * v }
    function mean(name, k) { return n_[name, k] ? s_[name, k] / n_[name, k] : 0 }
    function sd(name, k,   m, n) {
        n = n_[name, k]; if (n < 2) return 0
        m = s_[name, k] / n; v = (q_[name, k] - n * m * m) / (n - 1); return v > 0 ? sqrt(v) : 0
    }
    {
        key = $c["model"] "," $c["n_threads"]
        if (!(key in seen)) { seen[key] = 1; order[++n] = key }
        model[key] = $c["model"]; type[key] = $c["model_type"]; head[key] = $c["head_type"]
        thr[key] = $c["n_threads"]; bpt[key] = $c["weight_bytes_per_token"]
        v = $c["avg_ts"]; roof = $2 * 1e9 / bpt[key]
        if ($c["test"] ~ /^tg/) {
            if ($1 == "default") { add("tg", key, v); add("bw", key, $2); add("roof", key, roof); add("frac", key, v / roof) }
            else { add("tgs", key, v); add("fracs", key, v / roof) }
        } else if ($1 == "default") add("pp", key, v)
        r = $c["peak_rss_bytes"]
        if ($1 == "default" && r > rss[key]) { rss[key] = r; extra[key] = r - $c["file_bytes"] - $c["kv_bytes"] }
    }
    END {
        for (i = 1; i <= n; i++) {
            k = order[i]
            skip = n_["tgs", k] ? sprintf("%.2f ± %.2f", mean("tgs", k), sd("tgs", k)) : "-"
            skipp = n_["tgs", k] ? sprintf("%.0f %%", 100 * mean("fracs", k)) : "-"
            ratio = mean("tg", k) > 0 && n_["pp", k] ? sprintf("%.1fx", mean("pp", k) / mean("tg", k)) : "-"
            printf "| %s | %s | %s | %s | %.1f | %.3f | %.1f | %.2f ± %.2f | %.0f %% | %s | %s | %.2f ± %.2f | %s | %.0f | %.0f |\n",
                model[k], type[k], head[k], thr[k], mean("bw", k), bpt[k] / 1e9, mean("roof", k),
                mean("tg", k), sd("tg", k), 100 * mean("frac", k), skip, skipp, mean("pp", k),
                sd("pp", k), ratio, rss[k] / 1e6, extra[k] / 1e6
        }
    }' "$csv"
    echo
    echo "tg = tg$n_gen, pp = pp$n_prompt: mean ± stddev over $reps runs of bitnet bench -r 1 (each after its"
    echo "own warm-up). Each run is bracketed by bench_bandwidth runs (4 KiB and huge pages, before and after);"
    echo "its roofline is the largest of the four / weight bytes per token. Read GB/s, roofline and % roofline"
    echo "are means over the runs of the per-run figures. \"ReLU² skip\": BITNET_CPU_SPARSE=1 (same bracketing)."
    echo "Peak RSS is the largest ru_maxrss of the bitnet bench processes of that row."
} | tee -a "$md"
echo >&2
echo "raw results: $csv; table: $md" >&2
