#!/bin/sh
# Builds mqttsync in release mode and installs the C library under PREFIX:
#   PREFIX/lib/libmqttsync.a
#   PREFIX/lib/libmqttsync.so.VERSION (+ libmqttsync.so.0 -> it, libmqttsync.so -> .so.0)
#   PREFIX/include/mqttsync/{mqttsync.h, MQTTClient.h, ...}
#   PREFIX/lib/pkgconfig/{mqttsync.pc, mqttsync-static.pc}
#   PREFIX/lib/cmake/mqttsync/{mqttsyncConfig.cmake, mqttsyncConfigVersion.cmake}
# With --paho-cmake, also a CMake package under Eclipse Paho C's name, so that a project
# using find_package(eclipse-paho-mqtt-c) switches to mqttsync by prefix alone:
#   PREFIX/lib/cmake/eclipse-paho-mqtt-c/eclipse-paho-mqtt-cConfig{,Version}.cmake
# Usage: scripts/install-c.sh [--paho-cmake] PREFIX   (honours CARGO and CARGO_TARGET_DIR)
set -eu

PAHO_CMAKE=0
if [ "${1:-}" = "--paho-cmake" ]; then
    PAHO_CMAKE=1
    shift
fi
if [ $# -ne 1 ]; then
    echo "usage: $0 [--paho-cmake] PREFIX" >&2
    exit 2
fi
mkdir -p "$1"
PREFIX=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CARGO=${CARGO:-cargo}
SOMAJOR=0   # keep in sync with SONAME in build.rs
SONAME=libmqttsync.so.$SOMAJOR
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n 1)

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Same command as the tests (tests/common/mod.rs), so neither invalidates the other's build.
if ! (cd "$ROOT" && "$CARGO" rustc --release --lib --message-format=json-render-diagnostics \
        -- --print native-static-libs >"$TMP/json" 2>"$TMP/err"); then
    cat "$TMP/err" >&2
    exit 1
fi
STATIC_LIB=$(grep '"compiler-artifact"' "$TMP/json" | grep -o '"[^"]*/libmqttsync\.a"' | tr -d '"' | tail -n 1)
SHARED_LIB=$(grep '"compiler-artifact"' "$TMP/json" | grep -o '"[^"]*/libmqttsync\.so"' | tr -d '"' | tail -n 1)
RUSTC_LIBS=$(sed -n 's/.*native-static-libs: //p' "$TMP/err" | tail -n 1)
if [ -z "$STATIC_LIB" ] || [ -z "$SHARED_LIB" ] || [ -z "$RUSTC_LIBS" ]; then
    echo "install-c.sh: could not find the built libraries or the native-static-libs line" >&2
    cat "$TMP/err" >&2
    exit 1
fi

# OpenSSL first (the TLS transport links it), then what rustc reports, without duplicates.
NATIVE=""
for l in -lssl -lcrypto $RUSTC_LIBS; do
    case " $NATIVE " in *" $l "*) ;; *) NATIVE="${NATIVE:+$NATIVE }$l" ;; esac
done
# For CMake: OpenSSL and Threads come as imported targets; libc is implicit.
CMAKE_SYSTEM_LIBS=""
for l in $NATIVE; do
    case "$l" in
        -lssl|-lcrypto|-lpthread|-lc) ;;
        -l*) CMAKE_SYSTEM_LIBS="${CMAKE_SYSTEM_LIBS:+$CMAKE_SYSTEM_LIBS;}${l#-l}" ;;
    esac
done

subst() {
    sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@VERSION@|$VERSION|g" -e "s|@SONAME@|$SONAME|g" \
        -e "s|@NATIVE_STATIC_LIBS@|$NATIVE|g" -e "s|@CMAKE_SYSTEM_LIBS@|$CMAKE_SYSTEM_LIBS|g" \
        "$1" >"$2"
}

install -d "$PREFIX/lib" "$PREFIX/include/mqttsync" "$PREFIX/lib/pkgconfig" \
    "$PREFIX/lib/cmake/mqttsync"
install -m 644 "$STATIC_LIB" "$PREFIX/lib/libmqttsync.a"
install -m 755 "$SHARED_LIB" "$PREFIX/lib/libmqttsync.so.$VERSION"
ln -sf "libmqttsync.so.$VERSION" "$PREFIX/lib/$SONAME"
ln -sf "$SONAME" "$PREFIX/lib/libmqttsync.so"
install -m 644 "$ROOT"/include/*.h "$PREFIX/include/mqttsync/"
subst "$ROOT/packaging/mqttsync.pc.in" "$TMP/mqttsync.pc"
subst "$ROOT/packaging/mqttsync-static.pc.in" "$TMP/mqttsync-static.pc"
subst "$ROOT/packaging/mqttsyncConfig.cmake.in" "$TMP/mqttsyncConfig.cmake"
subst "$ROOT/packaging/mqttsyncConfigVersion.cmake.in" "$TMP/mqttsyncConfigVersion.cmake"
install -m 644 "$TMP/mqttsync.pc" "$TMP/mqttsync-static.pc" "$PREFIX/lib/pkgconfig/"
install -m 644 "$TMP/mqttsyncConfig.cmake" "$TMP/mqttsyncConfigVersion.cmake" \
    "$PREFIX/lib/cmake/mqttsync/"
if [ "$PAHO_CMAKE" = 1 ]; then
    install -d "$PREFIX/lib/cmake/eclipse-paho-mqtt-c"
    subst "$ROOT/packaging/eclipse-paho-mqtt-cConfig.cmake.in" "$TMP/eclipse-paho-mqtt-cConfig.cmake"
    subst "$ROOT/packaging/eclipse-paho-mqtt-cConfigVersion.cmake.in" \
        "$TMP/eclipse-paho-mqtt-cConfigVersion.cmake"
    install -m 644 "$TMP/eclipse-paho-mqtt-cConfig.cmake" \
        "$TMP/eclipse-paho-mqtt-cConfigVersion.cmake" "$PREFIX/lib/cmake/eclipse-paho-mqtt-c/"
fi
echo "installed mqttsync $VERSION into $PREFIX (static link line: $NATIVE)"
