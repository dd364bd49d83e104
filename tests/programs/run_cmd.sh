#!/usr/bin/env bash
# Run an arbitrary command natively and under gshim, and compare (like
# run.sh's `same` mode, for programs that are not built here, e.g. an
# interpreter running a script).
#
#   run_cmd.sh <libgshim.so> <command> [args...]
#
# Runs the command natively, then with LD_PRELOAD=<libgshim.so> at each
# GOMAXPROCS of GSHIM_TEST_PROCS (default "1 2"): stdout and exit status
# must equal the native run's.  The command is looked up in PATH; if it
# is missing the test is skipped (exit 77, meson's convention).
# Environment: GSHIM_TEST_TIMEOUT (seconds per run, default 30),
# GSHIM_TEST_PROCS.  Exit status: 0 pass, 1 fail, 77 skip.
set -euo pipefail

if (($# < 2)); then
    echo "usage: $0 <libgshim.so> <command> [args...]" >&2
    exit 2
fi
lib=$1
shift
cmd0=$1
shift
args=("$@")

ulimit -c 0 2>/dev/null || true
timeout_s=${GSHIM_TEST_TIMEOUT:-30}
procs=${GSHIM_TEST_PROCS:-1 2}
name=$(basename "$cmd0")

if ! exe=$(command -v "$cmd0"); then
    echo "SKIP: $cmd0 not found"
    exit 77
fi
[[ -f $lib ]] || { echo "FAIL: no library $lib"; exit 1; }
lib=$(realpath "$lib")

work=$(mktemp -d "${TMPDIR:-/tmp}/gshim-run-cmd.XXXXXX")
trap 'rm -rf "$work"' EXIT

# run <tag> <GOMAXPROCS or "native">: sets $status; output in $work/<tag>.{out,err}
run() {
    local tag=$1 p=$2 start end
    local cmd=(timeout -k 5 "$timeout_s")
    if [[ $p == native ]]; then
        cmd+=(env -u LD_PRELOAD "$exe")
    else
        cmd+=(env LD_PRELOAD="$lib" GOMAXPROCS="$p" "$exe")
    fi
    start=$(date +%s%N)
    status=0
    "${cmd[@]}" "${args[@]}" >"$work/$tag.out" 2>"$work/$tag.err" </dev/null || status=$?
    end=$(date +%s%N)
    printf '%-10s %-14s status %-4s %6d ms\n' "$name" "$tag" "$status" $(((end - start) / 1000000))
    if ((status == 124 || status == 137)); then
        echo "  TIMEOUT after ${timeout_s}s"
    fi
}

show() {
    echo "--- stdout of $1"
    head -c 4000 "$work/$1.out"
    echo "--- stderr of $1"
    tail -c 4000 "$work/$1.err"
    echo "---"
}

failed=0
fail() { echo "FAIL: $*"; failed=1; }

run native native
nstatus=$status
if ((nstatus != 0)); then
    show native
    fail "native run exited with $nstatus (the test itself is broken)"
fi
for p in $procs; do
    run "gshim-P$p" "$p"
    if ((status != nstatus)); then
        fail "GOMAXPROCS=$p: exit status $status, native $nstatus"
        show "gshim-P$p"
    elif ! diff -u --label native --label "gshim-P$p" "$work/native.out" "$work/gshim-P$p.out"; then
        fail "GOMAXPROCS=$p: stdout differs from native"
        show "gshim-P$p"
    fi
done

((failed == 0)) && echo "PASS: $name (native vs gshim)"
exit "$failed"
