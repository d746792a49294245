# shellcheck shell=bash
# e2e_lib.sh - what the end-to-end scripts (tests/e2e_*.sh) share. Each one
# sources it after `set -u`:
#     source "$(dirname "$0")/e2e_lib.sh"
# (tests/CMakeLists.txt leaves this file out of the tests it registers.) It offers:
#   passes, fails   the counters, from 0
#   pass            counts a passed check
#   fail MESSAGE    prints "FAIL: MESSAGE" and counts a failed check
#   check NAME CODE PATTERN COMMAND...
#                   runs COMMAND with stdout and stderr together; it passes when
#                   COMMAND exits with CODE and its output matches the extended
#                   regex PATTERN ("" matches anything), else it fails and shows
#                   the output. When E2E_REJECT is set (an extended regex), output
#                   with a line matching it fails the check too.
#   count NAME N PATTERN FILE
#                   passes when exactly N lines of FILE match PATTERN, else fails
#                   and shows FILE's first lines
#   summary         prints "P passed, F failed"; its status is 0 when none failed
#   finish          summary, then exits with its status (0, or 1 on a failure)
#   abort MESSAGE   fail MESSAGE, then finish (a check the rest depends on failed)
#   skip MESSAGE    prints "SKIP: MESSAGE" and exits 77, which ctest counts as
#                   skipped (SKIP_RETURN_CODE in tests/CMakeLists.txt)
# A script ends with `finish`, so that its exit status is 0 when every check passed.

passes=0
fails=0

pass() { passes=$((passes + 1)); }

fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

# TEXT, all of it when it is short, else its first and last 4 lines
show_output() {
    local n
    n=$(wc -l <<<"$1")
    if [ "$n" -le 8 ]; then
        echo "$1"
    else
        head -4 <<<"$1"
        echo "    ... ($((n - 8)) lines more) ..."
        tail -4 <<<"$1"
    fi
}

check() { # name, expected exit code, expected output pattern, command...
    local name=$1 want=$2 pattern=$3
    shift 3
    local out rc
    out=$("$@" 2>&1)
    rc=$?
    if [ "$rc" -ne "$want" ] || ! grep -qE -- "$pattern" <<<"$out"; then
        fail "$name: exit $rc (want $want), output:"
        show_output "$out"
    elif [ -n "${E2E_REJECT:-}" ] && grep -qE -- "$E2E_REJECT" <<<"$out"; then
        fail "$name: output matching '$E2E_REJECT':"
        grep -E -- "$E2E_REJECT" <<<"$out" | head -3
    else
        pass
    fi
}

count() { # name, expected count, pattern, file
    local n
    n=$(grep -cE -- "$3" "$4")
    if [ "$n" -ne "$2" ]; then
        fail "$1: $n lines match '$3', want $2"
        head -10 "$4"
    else
        pass
    fi
}

summary() {
    echo "$passes passed, $fails failed"
    [ "$fails" -eq 0 ]
}

finish() {
    summary
    exit $?
}

abort() {
    fail "$@"
    finish
}

skip() {
    echo "SKIP: $*"
    exit 77
}
