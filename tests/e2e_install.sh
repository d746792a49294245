#!/usr/bin/env bash
# e2e_install.sh - libbitnet as an application meets it: `cmake --install`
# into a temporary prefix, then examples/simple.c built against the installed
# files with pkg-config (shared and static) and with CMake's find_package,
# each run on a generated model: the greedy ids must equal `bitnet run
# --temp 0 --print-ids`. Also: libbitnet.so exports exactly the functions
# bitnet.h declares with BN_API, and has a SONAME.
set -u
source "$(dirname "$0")/e2e_lib.sh"
BIN=$1
TMP=$2
BUILD=$(cd "$(dirname "$BIN")/.." && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    skip "$BUILD is not a CMake build folder"
fi
if ! find "$BUILD" -maxdepth 3 -name 'libbitnet.so*' | grep -q .; then
    skip "libbitnet.so is not built (cmake --build $BUILD --target bitnet_shared)"
fi
rm -rf "$TMP"
mkdir -p "$TMP"
PREFIX=$TMP/prefix
if cmake --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" 2>&1; then pass; else
    abort "cmake --install: $(tail -3 "$TMP/install.log")"
fi
PC=$(find "$PREFIX" -name bitnet.pc | head -1)
LIBDIR=$(dirname "$(dirname "$PC")")
for f in "$PREFIX/include/bitnet.h" "$LIBDIR/libbitnet.a" "$LIBDIR/libbitnet.so" \
    "$LIBDIR/cmake/bitnet/bitnetConfig.cmake" "$LIBDIR/cmake/bitnet/bitnetConfigVersion.cmake" \
    "$PREFIX/bin/bitnet"; do
    [ -e "$f" ] && pass || fail "not installed: $f"
done

# the exported symbols are exactly bitnet.h's BN_API functions
grep -v '^#' "$PREFIX/include/bitnet.h" | grep -oE 'BN_API [^;]*\(' | grep -oE '[a-z_0-9]+\($' | tr -d '(' |
    sort >"$TMP/declared"
nm -D --defined-only "$LIBDIR/libbitnet.so" | awk '$2 ~ /[TtWiDdBbRr]/ {print $3}' | grep -v '^_' |
    sed 's/@.*//' | sort >"$TMP/exported"
if [ -s "$TMP/declared" ] && cmp -s "$TMP/declared" "$TMP/exported"; then pass; else
    fail "exports differ from bitnet.h (< declared, > exported): $(diff "$TMP/declared" "$TMP/exported" | grep '^[<>]' | head -10 | tr '\n' ' ')"
fi
objdump -p "$LIBDIR/libbitnet.so" | grep -q 'SONAME *libbitnet.so.0' && pass || fail "no SONAME libbitnet.so.0"

# a sanitized build's libraries need the program built the same way
SAN=$(grep '^BITNET_SANITIZE:' "$BUILD/CMakeCache.txt" | cut -d= -f2)
CFLAGS="-std=c11 -Wall -Wextra -Werror"
[ -n "$SAN" ] && CFLAGS="$CFLAGS -fsanitize=$SAN"
export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
CC=${CC:-cc}

M=$TMP/tiny.gguf
"$BIN" gen -o "$M" --shape tiny --type tq2_0 --seed 5 >/dev/null 2>&1 || fail "gen"
want=$("$BIN" run -m "$M" -p "hello world" -n 8 --temp 0 --print-ids 2>/dev/null)
[ -n "$want" ] && pass || fail "bitnet run gave no ids"

run_example() { # name, binary
    local out
    out=$(LD_LIBRARY_PATH=$LIBDIR "$2" "$M" "hello world" 8 2>&1 >/dev/null)
    local got
    got=$(echo "$out" | sed -n 's/^ids: //p')
    if [ "$got" = "$want" ]; then pass; else fail "$1: ids '$got', bitnet run '$want' ($(echo "$out" | tail -2))"; fi
}

# pkg-config, shared
if $CC $CFLAGS "$SRC/examples/simple.c" $(pkg-config --cflags --libs bitnet) -o "$TMP/simple_pc" \
    2>"$TMP/cc1.log"; then
    pass
    run_example "pkg-config shared" "$TMP/simple_pc"
    LD_LIBRARY_PATH=$LIBDIR ldd "$TMP/simple_pc" | grep -q "$LIBDIR/libbitnet.so" && pass || fail "simple_pc does not use the installed libbitnet.so"
else fail "pkg-config shared build: $(head -5 "$TMP/cc1.log")"; fi

# pkg-config, static
static_libs=$(pkg-config --static --libs bitnet | sed 's/-lbitnet\b/-Wl,-Bstatic -lbitnet -Wl,-Bdynamic/')
if $CC $CFLAGS "$SRC/examples/simple.c" $(pkg-config --cflags bitnet) $static_libs \
    -o "$TMP/simple_static" 2>"$TMP/cc2.log"; then
    pass
    run_example "pkg-config static" "$TMP/simple_static"
    ldd "$TMP/simple_static" | grep -q libbitnet && fail "simple_static links libbitnet.so" || pass
else fail "pkg-config static build: $(head -5 "$TMP/cc2.log")"; fi

# CMake find_package(bitnet): bitnet::bitnet and bitnet::bitnet_static
if cmake -S "$SRC/examples" -B "$TMP/cmake-build" -DCMAKE_PREFIX_PATH="$PREFIX" \
    -DCMAKE_C_FLAGS="$CFLAGS" >"$TMP/cmake.log" 2>&1 &&
    cmake --build "$TMP/cmake-build" >>"$TMP/cmake.log" 2>&1; then
    pass
    run_example "cmake shared" "$TMP/cmake-build/simple"
    run_example "cmake static" "$TMP/cmake-build/simple_static"
else fail "cmake build of examples/: $(grep -iE 'error' "$TMP/cmake.log" | head -5)"; fi

# an error reaches the program as a message
out=$(LD_LIBRARY_PATH=$LIBDIR "$TMP/simple_pc" "$TMP/none.gguf" "x" 2>&1)
rc=$?
[ "$rc" -eq 1 ] && grep -q "^error: .*none.gguf" <<<"$out" && pass || fail "missing model: exit $rc: $out"

finish
