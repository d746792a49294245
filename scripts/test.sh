#!/usr/bin/env bash
# test.sh - runs every test: installs what is missing, checks formatting,
# builds (warnings are errors) and runs the whole suite through ctest, then
# the same suite built with AddressSanitizer and UndefinedBehaviorSanitizer,
# the threaded code under ThreadSanitizer, one generation under valgrind, and
# every fuzz target for BITNET_FUZZ_SECONDS (default 60) seconds.
#   BITNET_TEST_FAST=1  only the normal build and its tests
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
bitnet_install_deps

echo "== format check (clang-format)"
mapfile -t sources < <(git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
if ! clang-format --dry-run --Werror "${sources[@]}"; then
    echo "error: sources are not formatted; run: clang-format -i \$(git ls-files '*.c' '*.h')" >&2
    exit 1
fi

jobs=$(nproc)
echo "== build (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBITNET_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
echo "== tests"
ctest --test-dir build --output-on-failure -j"$jobs"

if [ "${BITNET_TEST_FAST:-0}" != 1 ]; then
    echo "== build with ASan+UBSan (build-asan/)"
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBITNET_WERROR=ON \
        -DBITNET_SANITIZE=address,undefined >/dev/null
    cmake --build build-asan -j"$jobs"
    echo "== tests under ASan+UBSan"
    UBSAN_OPTIONS=print_stacktrace=1 \
        BITNET_TEST_SANITIZED=1 ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE slow
fi

if [ "${BITNET_TEST_FAST:-0}" != 1 ]; then
    echo "== thread pool, scheduler and forward pass under ThreadSanitizer (build-tsan/)"
    cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DBITNET_WERROR=ON -DBITNET_SANITIZE=thread \
        -DBITNET_VULKAN=OFF -DBITNET_OPENCL=OFF >/dev/null
    tsan_tests=$(cd tests && ls test_threadpool.c test_sched.c test_forward.c test_api_threads.c 2>/dev/null | sed 's/\.c$//' | paste -sd'|')
    cmake --build build-tsan -j"$jobs" --target bitnet_cli $(echo "$tsan_tests" | tr '|' ' ')
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
        ctest --test-dir build-tsan --output-on-failure -R "^($tsan_tests)\$"

    echo "== one generation under valgrind memcheck"
    vg_model=build/tests/tmp/valgrind-tiny.gguf
    build/bin/bitnet gen -o "$vg_model" --shape tiny --type tq2_0 --seed 5 2>/dev/null
    valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
        build/bin/bitnet run -m "$vg_model" -p "In the beginning" -n 8 -t 2 --seed 1 >/dev/null

    echo "== fuzzing, ${BITNET_FUZZ_SECONDS:-60} s per target"
    ./scripts/fuzz.sh "${BITNET_FUZZ_SECONDS:-60}"
fi
