#!/usr/bin/env bash
# Real programs from Debian's packages, natively and under gshim.
#
#   real_programs.sh <libgshim.so> <case> [build dir for omp]
#
# cases:
#   redis   redis-server (linked with jemalloc) on a loopback port, loaded
#           by redis-benchmark (SET/GET/LPUSH/INCR, 50 clients); every
#           request must be answered, the data set must match natively
#   numpy   Python's ThreadPoolExecutor over numpy (BLAS threads too); the
#           printed result must match
#   omp     an OpenMP program (libgomp: spin-then-futex barriers through
#           raw system calls, worker pools); the printed result must match
#   rg      ripgrep -j4 (Rust std threads: futexes through syscall(),
#           crossbeam work stealing) over /usr/include: same matches
# Runs natively, then under gshim at GOMAXPROCS=1 and 2 (GSHIM_TEST_PROCS)
# in the TLS mode of GSHIM_TLS, each under a timeout; prints wall time and
# the ratio to native (not judged: these machines are shared and noisy;
# scripts/bench is where speed is measured).  Exit 77 (skip) when the
# program is not installed.
set -euo pipefail

lib=$(realpath "$1")
case_=$2
omp_exe=${3:-}
timeout_s=${GSHIM_TEST_TIMEOUT:-60}
procs=${GSHIM_TEST_PROCS:-1 2}
work=$(mktemp -d "${TMPDIR:-/tmp}/gshim-real.XXXXXX")
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
ulimit -c 0 2>/dev/null || true

need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || { echo "SKIP: $c not installed"; exit 77; }
    done
}

# prefix <tag>: the command prefix for a run (native or gshim at P)
prefix() {
    if [[ $1 == native ]]; then
        echo "env -u LD_PRELOAD"
    else
        echo "env LD_PRELOAD=$lib GOMAXPROCS=$1"
    fi
}

ms() { echo $(($(date +%s%N) / 1000000)); }

failed=0
native_ms=0
report() { # report <tag> <status> <ms>
    local ratio=""
    if [[ $1 == native ]]; then
        native_ms=$3
    elif ((native_ms > 0)); then
        ratio=$(awk -v a="$3" -v b="$native_ms" 'BEGIN { printf "%.2fx native time", a / b }')
    fi
    printf '%-8s %-8s status %-4s %6d ms  %s\n' "$case_" "$1" "$2" "$3" "$ratio"
}

# run_same <cmd...>: the output of each configuration must equal native's
run_same() {
    local tag st t0 t1
    for tag in native $procs; do
        t0=$(ms)
        st=0
        # shellcheck disable=SC2046
        timeout -k 5 "$timeout_s" $(prefix "$tag") "$@" >"$work/$tag.out" 2>"$work/$tag.err" </dev/null || st=$?
        t1=$(ms)
        report "$tag" "$st" $((t1 - t0))
        if ((st != 0)); then
            echo "FAIL: $tag exited with $st"; tail -c 2000 "$work/$tag.err"; failed=1
        elif [[ $tag != native ]] && ! cmp -s "$work/native.out" "$work/$tag.out"; then
            echo "FAIL: $tag output differs from native"
            diff <(head -c 3000 "$work/native.out") <(head -c 3000 "$work/$tag.out") | head -20
            failed=1
        fi
    done
}

case $case_ in
redis)
    need redis-server redis-benchmark redis-cli
    for tag in native $procs; do
        # A random port may be taken (another test's server): a server
        # that dies before it answers is started again on another one.
        for _ in 1 2 3 4 5; do
            port=$((20000 + RANDOM % 20000))
            # shellcheck disable=SC2046
            $(prefix "$tag") redis-server --port "$port" --bind 127.0.0.1 --save "" \
                --appendonly no --daemonize no --logfile "$work/redis-$tag.log" &
            pids+=($!)
            srv=$!
            up=0
            for _ in $(seq 100); do
                redis-cli -p "$port" ping >/dev/null 2>&1 && { up=1; break; }
                kill -0 "$srv" 2>/dev/null || break
                sleep 0.1
            done
            ((up)) && break
        done
        t0=$(ms)
        st=0
        timeout -k 5 "$timeout_s" redis-benchmark -p "$port" -q -n 20000 -c 50 -r 1000 \
            -t set,get,lpush,incr >"$work/bench-$tag.out" 2>&1 || st=$?
        t1=$(ms)
        dbsize=$(timeout 10 redis-cli -p "$port" dbsize 2>&1 || echo "no answer")
        llen=$(timeout 10 redis-cli -p "$port" llen mylist 2>&1 || echo "no answer")
        timeout 10 redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
        sst=0
        timeout 20 tail --pid="$srv" -f /dev/null || sst=$?
        kill -9 "$srv" 2>/dev/null || true
        report "$tag" "$st" $((t1 - t0))
        tr '\r' '\n' <"$work/bench-$tag.out" | grep 'requests per second' | sed 's/^/    /' || true
        echo "    keys $dbsize, list length $llen"
        if ((st != 0)) || ((sst != 0)); then
            echo "FAIL: $tag: benchmark status $st, server exit wait $sst"
            tail -5 "$work/redis-$tag.log"; failed=1
        fi
        if [[ $tag == native ]]; then
            want="$dbsize/$llen"
        elif [[ "$dbsize/$llen" != "$want" ]]; then
            echo "FAIL: $tag: data set $dbsize/$llen, native $want"; failed=1
        fi
    done
    ;;
numpy)
    need python3
    py=/usr/bin/python3
    [[ -x $py ]] || py=$(command -v python3)
    "$py" -c 'import numpy' 2>/dev/null || { echo "SKIP: numpy not installed for $py"; exit 77; }
    cat >"$work/np.py" <<'PY'
import concurrent.futures as cf
import numpy as np
def work(i):
    rng = np.random.default_rng(i)
    a = rng.standard_normal((120, 120))
    s = 0.0
    for _ in range(15):
        a = a @ a.T
        a /= np.abs(a).max()
        s += float(a.sum())
    return round(s, 6)
with cf.ThreadPoolExecutor(max_workers=8) as ex:
    r = list(ex.map(work, range(24)))
print(len(r), round(sum(r), 3))
PY
    run_same "$py" "$work/np.py"
    ;;
omp)
    [[ -x $omp_exe ]] || { echo "SKIP: no OpenMP program (libgomp missing at build time)"; exit 77; }
    run_same "$omp_exe"
    ;;
rg)
    need rg
    dir=/usr/include
    [[ -d $dir ]] || { echo "SKIP: no $dir"; exit 77; }
    # sorted: the order of files differs between runs natively too
    run_same sh -c "rg -j4 -c --sort path 'define|struct' $dir"
    ;;
*)
    echo "unknown case $case_" >&2
    exit 2
    ;;
esac
((failed == 0)) && echo "PASS: $case_"
exit "$failed"
