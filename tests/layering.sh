#!/usr/bin/env bash
# The layer rules of the source tree (bottom up: arch -> core ->
# syscall_wrap -> shim; a layer uses only the layers below it).
#
#   layering.sh <srcdir> [builddir]
#
# Checks every file of arch/, core/ and syscall_wrap/ (.c, .h, .S):
#   - core/ and arch/ include no header of shim/ or syscall_wrap/
#   - syscall_wrap/ includes no header of shim/
#   - arch/ includes nothing of core/
# An include is resolved as the compiler does (the file's own folder, then
# the include directories of meson.build: <srcdir> and arch/<cpu>), so
# "rt.h" from core/ is core/rt.h and "arch.h" arch/<cpu>/arch.h.
#
# With a build dir, also the objects: no undefined symbol of the shim/
# objects of libgshim.so (<builddir>/libgshim.so.p/shim_*.o) may be
# defined by a syscall_wrap/ object (syscall_wrap_*.o), save the functions
# of ALLOW below (space-separated names).
#
# Each violation is printed as "file:line: ..." (or "object: ..."), then
# the test fails.  Exit status: 0 pass, 1 violations, 2 usage.
set -euo pipefail

# shim functions that syscall_wrap/ may define for shim/ to call
ALLOW=""

if (($# < 1 || $# > 2)); then
    echo "usage: $0 <srcdir> [builddir]" >&2
    exit 2
fi
src=$(realpath "$1")
build=${2:-}
[[ -f $src/meson.build && -d $src/core ]] || { echo "layering: $src is not gshim's source tree" >&2; exit 2; }

bad=0
violation() { echo "$*"; bad=$((bad + 1)); }

layer_of() { # layer_of <path relative to src>: sets $layer: arch, core, syscall_wrap, shim or ""
    layer=${1%%/*}
    case $layer in
    arch | core | syscall_wrap | shim) ;;
    *) layer="" ;;
    esac
}

resolve() { # resolve <including file, relative> <name>: sets $target, the included file relative to src ("" if none)
    local cand
    target=""
    for cand in "${1%/*}/$2" "$2" arch/*/"$2"; do
        if [[ -f $src/$cand ]]; then
            # normalise a/b/../c (rare: no process for the usual case)
            while [[ $cand =~ ^(.*/)?[^/]+/\.\./(.*)$ ]]; do
                cand=${BASH_REMATCH[1]}${BASH_REMATCH[2]}
            done
            target=${cand#./}
            return
        fi
    done
}

forbidden() { # forbidden <from layer> <to layer>: 0 if the rules forbid it
    case $1:$2 in
    core:shim | core:syscall_wrap | arch:shim | arch:syscall_wrap | syscall_wrap:shim | arch:core) return 0 ;;
    esac
    return 1
}

cd "$src"
nfiles=0
while IFS= read -r -d '' f; do
    f=${f#./}
    layer_of "$f"
    from=$layer
    nfiles=$((nfiles + 1))
    # every #include line, "N:text"
    while IFS= read -r hit; do
        line=${hit%%:*}
        text=${hit#*:}
        [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"\<]([^\"\>]+)[\"\>] ]] || continue
        resolve "$f" "${BASH_REMATCH[1]}"
        [[ -n $target ]] || continue   # a system header
        layer_of "$target"
        to=$layer
        if [[ -n $to ]] && forbidden "$from" "$to"; then
            violation "$f:$line: $from/ includes $target ($to/): ${text#"${text%%[![:space:]]*}"}"
        fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include' "$f" || true)
done < <(find arch core syscall_wrap -type f \( -name '*.c' -o -name '*.h' -o -name '*.S' \) -print0 | sort -z)
echo "layering: $nfiles source files of arch/, core/, syscall_wrap/ checked"

if [[ -n $build ]]; then
    objdir=$build/libgshim.so.p
    tmp=$(mktemp "${TMPDIR:-/tmp}/gshim-layering.XXXXXX")
    trap 'rm -f "$tmp"' EXIT
    shopt -s nullglob
    shim_objs=("$objdir"/shim_*.o)
    wrap_objs=("$objdir"/syscall_wrap_*.o)
    shopt -u nullglob
    if ((${#shim_objs[@]} == 0 || ${#wrap_objs[@]} == 0)); then
        violation "$objdir: no shim_*.o or syscall_wrap_*.o objects (is $build a built gshim build dir?)"
    else
        # "symbol object" for what the syscall_wrap objects define, then
        # for what each shim object leaves undefined; one awk joins them
        {
            for o in "${wrap_objs[@]}"; do
                nm --defined-only -g "$o" | awk -v o="${o##*/}" 'NF == 3 { print "D", $3, o }'
            done
            for o in "${shim_objs[@]}"; do
                nm --undefined-only "$o" | awk -v o="${o##*/}" '{ print "U", $NF, o }'
            done
        } | awk -v allow=" $ALLOW " '
            $1 == "D" { def[$2] = def[$2] (def[$2] == "" ? "" : " ") $3; next }
            $1 == "U" && ($2 in def) && index(allow, " " $2 " ") == 0 && !seen[$3 " " $2]++ {
                printf "%s: calls %s, defined by syscall_wrap/ (%s); shim/ must not use syscall_wrap/ (or add it to ALLOW in tests/layering.sh)\n", $3, $2, def[$2]
            }' >"$tmp"
        while IFS= read -r v; do
            violation "$v"
        done <"$tmp"
        echo "layering: ${#shim_objs[@]} shim/ objects against ${#wrap_objs[@]} syscall_wrap/ objects checked"
    fi
fi

if ((bad > 0)); then
    echo "FAIL: $bad layering violation(s)"
    exit 1
fi
echo "PASS: layering"
