#!/usr/bin/env bash
# Thread dumps (issue 14): run tests/programs/traceback under gshim at
# GOMAXPROCS 1 and 2 (the TLS mode is the caller's GSHIM_TLS) and check
#   1. GSHIM_DEBUG=dumpsignal=SIGUSR2: the text dump on stderr names every
#      thread with its state, wait reason and its start function in the
#      backtrace, ends with the SCHED line, and the program goes on;
#   2. SIGQUIT: the dump, then death by SIGQUIT (status 131);
#   3. GSHIM_TRACEBACK=none: SIGQUIT kills without a word, and the dump
#      signal prints nothing and the program goes on;
#   4. GSHIM_DUMP=json:<file>: the file is valid JSON with every thread.
#
#   traceback.sh <traceback exe> <libgshim.so>
set -euo pipefail
exe=$(realpath "$1")
lib=$(realpath "$2")
timeout_s=${GSHIM_TEST_TIMEOUT:-30}
work=$(mktemp -d "${TMPDIR:-/tmp}/gshim-tb.XXXXXX")
trap 'rm -rf "$work"' EXIT
ulimit -c 0 2>/dev/null || true
fail=0

# run <procs> <arg> [env...] [-- more args]: status in $st, stderr in $work/err
run() {
    local p=$1 a=$2 envs=() more=()
    shift 2
    while (($#)) && [[ $1 != -- ]]; do envs+=("$1"); shift; done
    (($#)) && shift && more=("$@")
    st=0
    timeout -s KILL "$timeout_s" env GOMAXPROCS="$p" LD_PRELOAD="$lib" "${envs[@]}" \
        "$exe" "$a" "${more[@]}" >"$work/out" 2>"$work/err" || st=$?
}

bad() {
    echo "FAIL: $*"
    echo "---- stderr:"; cat "$work/err"
    fail=1
}

# every thread's block: header, then its frames
check_text() {
    python3 - "$work/err" <<'PY' || return 1
import re, sys
text = open(sys.argv[1]).read()
blocks = text.split("\n\n")
want = {
    "tb-mutex": (r"\[mutex 0x[0-9a-f]+ held by thread 1\]", "tb_mutex_waiter"),
    "tb-cond":  (r"\[cond 0x[0-9a-f]+\]", "tb_cond_waiter"),
    "tb-join":  (r"\[join thread \d+\]", "tb_joiner"),
    "tb-sleep": (r"\[sleep\]", "tb_sleeper"),
    "tb-pipe":  (r"\[I/O wait read fd \d+\]", "tb_pipe_reader"),
}
ok = True
for name, (state, fn) in want.items():
    b = [x for x in blocks if re.search(r'^thread \d+ "%s"' % name, x, re.M)]
    if len(b) != 1:
        print("no single block for", name); ok = False; continue
    head = b[0].strip().splitlines()[0]
    if not re.search(state, head):
        print("bad state for", name, ":", head); ok = False
    if not re.search(r"#\d+ +0x[0-9a-f]+ in %s\+0x" % fn, b[0]):
        print("no frame", fn, "for", name); ok = False
if not re.search(r"^thread 1 \(main\)", text, re.M):
    print("no main thread"); ok = False
if not re.search(r"^SCHED \d+ms: gomaxprocs=", text, re.M):
    print("no SCHED line"); ok = False
sys.exit(0 if ok else 1)
PY
}

check_json() {
    python3 - "$1" <<'PY' || return 1
import json, sys
d = json.load(open(sys.argv[1]))
th = {t["name"]: t for t in d["threads"]}
want = {"tb-mutex": ("mutex", "tb_mutex_waiter"), "tb-cond": ("cond", "tb_cond_waiter"),
        "tb-join": ("join", "tb_joiner"), "tb-sleep": ("sleep", "tb_sleeper"),
        "tb-pipe": ("I/O wait read", "tb_pipe_reader")}
ok = True
for n, (w, fn) in want.items():
    t = th.get(n)
    if not t or t.get("state") != "waiting" or t.get("wait") != w:
        print("bad", n, t); ok = False; continue
    if fn not in [f["func"] for f in t["frames"]]:
        print("no frame", fn, "for", n); ok = False
if th["tb-mutex"].get("owner") != 1 or "object" not in th["tb-mutex"]:
    print("mutex owner/object missing"); ok = False
if not any(t.get("main") for t in d["threads"]) or not d["sched"].startswith("SCHED"):
    print("main or sched missing"); ok = False
sys.exit(0 if ok else 1)
PY
}

for p in 1 2; do
    echo "== GOMAXPROCS=$p"
    run "$p" usr2 GSHIM_DEBUG=dumpsignal=SIGUSR2
    if [[ $st != 0 ]] || ! grep -qx done "$work/out"; then
        bad "dumpsignal: status $st, stdout $(cat "$work/out")"
    elif ! grep -q "^gshim: signal 12: traceback of every thread" "$work/err" ||
         ! check_text; then
        bad "dumpsignal: report"
    else
        echo "dumpsignal: ok"
    fi

    run "$p" quit
    if [[ $st != 131 ]]; then
        bad "SIGQUIT: status $st, wanted 131 (killed by SIGQUIT)"
    elif ! grep -q "^gshim: SIGQUIT: traceback of every thread" "$work/err" ||
         ! check_text; then
        bad "SIGQUIT: report"
    else
        echo "SIGQUIT: ok"
    fi

    run "$p" quit GSHIM_TRACEBACK=none
    if [[ $st != 131 ]] || [[ -s $work/err ]]; then
        bad "GSHIM_TRACEBACK=none, SIGQUIT: status $st (wanted 131), stderr not empty?"
    else
        echo "none, SIGQUIT: ok"
    fi
    run "$p" usr2 GSHIM_TRACEBACK=none GSHIM_DEBUG=dumpsignal=USR2 -- quiet
    if [[ $st != 0 ]] || [[ -s $work/err ]]; then
        bad "GSHIM_TRACEBACK=none, dump signal: status $st, stderr not empty?"
    else
        echo "none, dump signal: ok"
    fi

    run "$p" usr2 GSHIM_DEBUG=dumpsignal=12 GSHIM_DUMP="json:$work/dump.json"
    if [[ $st != 0 ]] || ! grep -q "traceback written to" "$work/err"; then
        bad "JSON: status $st"
    elif ! check_json "$work/dump.json"; then
        cp "$work/dump.json" "$work/err"
        bad "JSON: contents"
    else
        echo "JSON: ok"
    fi
done
((fail == 0)) && echo "traceback: all ok"
exit $fail
