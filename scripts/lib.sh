# shellcheck shell=bash
# Shared helpers for scripts/*. Source it; it cds to the repository root.
#
#   ensure_deps   install the Debian packages the build and tests need
#   build         configure build/ (once) and run ninja, quietly
#   as_root CMD   run CMD as root (directly, or through sudo when available)

GSHIM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$GSHIM_ROOT" || exit 1

# GSHIM_BUILD_DIR: build directory (default build/, relative to the root).
GSHIM_BUILD_DIR="${GSHIM_BUILD_DIR:-build}"
case $GSHIM_BUILD_DIR in
/*) ;;
*) GSHIM_BUILD_DIR="$GSHIM_ROOT/$GSHIM_BUILD_DIR" ;;
esac
export GSHIM_LIB="$GSHIM_BUILD_DIR/libgshim.so"

# Build + test dependencies (Debian 12 package names). `time` is
# /usr/bin/time, used by scripts/demo for max RSS.
GSHIM_DEPS=(meson ninja-build pkg-config gcc g++ liburing-dev
            libcriterion-dev python3 time coreutils
            libjemalloc2 libgoogle-perftools4 libmimalloc2.0)

say() { printf '%s\n' "$*" >&2; }
die() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $* (not root and no sudo)"
    fi
}

ensure_deps() {
    local missing=() p
    for p in "${GSHIM_DEPS[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    say "installing missing packages: ${missing[*]}"
    local log
    log="$(mktemp)"
    if ! { as_root apt-get update -q &&
           as_root env DEBIAN_FRONTEND=noninteractive \
               apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
           >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "apt-get install failed"
    fi
    rm -f "$log"
}

# Packages of the real-program tests (tests/programs/real_programs.sh):
# installed when possible; a test whose program is missing is skipped.
GSHIM_OPT_DEPS=(redis-server redis-tools python3-numpy ripgrep)

ensure_opt_deps() {
    local missing=() p
    for p in "${GSHIM_OPT_DEPS[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    say "installing optional packages: ${missing[*]}"
    if ! as_root env DEBIAN_FRONTEND=noninteractive \
           apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        say "could not install ${missing[*]}: the tests that need them are skipped"
    fi
    # Debian starts the packaged redis service; the tests run their own
    # servers on other ports and need none.
    return 0
}

# Show a build log without ninja's progress lines.
_show_log() { grep -v -E '^\[[0-9]+/[0-9]+\] ' "$1" >&2 || true; }

# shellcheck disable=SC2120  # optional ninja arguments
build() {
    local dir="$GSHIM_BUILD_DIR" log
    mkdir -p "$dir"
    log="$dir/gshim-build.log"
    if [[ ! -f "$dir/build.ninja" ]]; then
        local setup=(meson setup "$dir")
        [[ -f "$dir/meson-private/coredata.dat" ]] && setup=(meson setup --reconfigure "$dir")
        if ! "${setup[@]}" >"$log" 2>&1; then
            cat "$log" >&2
            say "meson setup failed (log: $log)"
            return 1
        fi
    fi
    if ! ninja -C "$dir" "$@" >"$log" 2>&1; then
        _show_log "$log"
        say "build failed (full log: $log)"
        return 1
    fi
}
