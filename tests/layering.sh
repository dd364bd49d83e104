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

layer_of() { # layer_of <path relative to src>: arch, core, syscall_wrap, shim or ""
    case $1 in
    arch/*) echo arch ;;
    core/*) echo core ;;
    syscall_wrap/*) echo syscall_wrap ;;
    shim/*) echo shim ;;
    *) echo "" ;;
    esac
}

resolve() { # resolve <including file, relative> <name>: the included file, relative; "" if none
    local dir cand d
    dir=$(dirname "$1")
    for cand in "$dir/$2" "$2" arch/*/"$2"; do
        if [[ -f $src/$cand ]]; then
            # normalise a/b/../c
            d=$(realpath -m --relative-to="$src" "$src/$cand")
            echo "$d"
            return
        fi
    done
    echo ""
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
    from=$(layer_of "$f")
    nfiles=$((nfiles + 1))
    # lines "N:#include "x"" or <x>
    while IFS= read -r hit; do
        line=${hit%%:*}
        text=${hit#*:}
        name=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*["<]([^">]+)[">].*/\1/' <<<"$text")
        [[ -n $name && $name != "$text" ]] || continue
        target=$(resolve "$f" "$name")
        [[ -n $target ]] || continue   # a system header
        to=$(layer_of "$target")
        if [[ -n $to ]] && forbidden "$from" "$to"; then
            violation "$f:$line: $from/ includes $target ($to/): ${text#"${text%%[![:space:]]*}"}"
        fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include' "$f" || true)
done < <(find arch core syscall_wrap -type f \( -name '*.c' -o -name '*.h' -o -name '*.S' \) -print0 | sort -z)
echo "layering: $nfiles source files of arch/, core/, syscall_wrap/ checked"

if [[ -n $build ]]; then
    objdir=$build/libgshim.so.p
    shopt -s nullglob
    shim_objs=("$objdir"/shim_*.o)
    wrap_objs=("$objdir"/syscall_wrap_*.o)
    shopt -u nullglob
    if ((${#shim_objs[@]} == 0 || ${#wrap_objs[@]} == 0)); then
        violation "$objdir: no shim_*.o or syscall_wrap_*.o objects (is $build a built gshim build dir?)"
    else
        # symbols the syscall_wrap objects define: "symbol object"
        defs=$(for o in "${wrap_objs[@]}"; do
            nm --defined-only -g "$o" | awk -v o="$(basename "$o")" 'NF == 3 { print $3, o }'
        done | sort -k1,1)
        for o in "${shim_objs[@]}"; do
            while read -r sym; do
                [[ " $ALLOW " == *" $sym "* ]] && continue
                where=$(awk -v s="$sym" '$1 == s { print $2 }' <<<"$defs" | tr '\n' ' ')
                if [[ -n $where ]]; then
                    violation "$(basename "$o"): calls $sym, defined by syscall_wrap/ (${where% }); shim/ must not use syscall_wrap/ (or add it to ALLOW in tests/layering.sh)"
                fi
            done < <(nm --undefined-only "$o" | awk '{ print $NF }' | sort -u)
        done
        echo "layering: ${#shim_objs[@]} shim/ objects against ${#wrap_objs[@]} syscall_wrap/ objects checked"
    fi
fi

if ((bad > 0)); then
    echo "FAIL: $bad layering violation(s)"
    exit 1
fi
echo "PASS: layering"
