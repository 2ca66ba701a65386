#!/bin/sh
# Everything CI runs (README's test command: install-deps.sh, then this), in three steps:
#   release   Release build in build/ and the whole ctest suite, including the valgrind
#             memcheck, cppcheck and clang-tidy tests
#   sanitize  ASan + UBSan build (gcc, RelWithDebInfo) in build-asan/ and the whole ctest
#             suite again, the Python tests running the sanitized binary; any sanitizer
#             report fails the test that triggered it
#   fuzz      the libFuzzer targets (clang) in build-fuzz/, each run FUZZ_SECONDS (60) on a
#             copy of its seed corpus; a crash, leak or timeout fails the step
# Usage: sh scripts/test-all.sh [release] [sanitize] [fuzz]   (default: all three)
# Environment: JOBS (build jobs, default nproc), FUZZ_SECONDS (default 60).
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
steps=${*:-release sanitize fuzz}

step_start=0
begin() {
    step_start=$(date +%s)
    echo
    echo "=== $1 ($(date -u +%H:%M:%S) UTC)"
}
end() {
    echo "=== $1 done in $(($(date +%s) - step_start)) s"
}

release() {
    begin "release build and tests"
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
    cmake --build build -j "$JOBS"
    ctest --test-dir build --output-on-failure
    end "release"
}

# LeakSanitizer stops the process's threads with ptrace; containers often forbid that
# (seccomp, no CAP_SYS_PTRACE). Find out on a tiny program that leaks, so that leak
# checking is on wherever it works and its absence is said loudly where it does not.
leak_check_works() {
    probe=$(mktemp -d)
    printf '#include <stdlib.h>\nvoid *p;\nint main(void) { p = malloc(7); p = 0; return 0; }\n' \
        > "$probe/leak.c"
    ok=1
    if cc -fsanitize=address -g "$probe/leak.c" -o "$probe/leak" 2>"$probe/cc.log"; then
        ASAN_OPTIONS=detect_leaks=1 "$probe/leak" >"$probe/out.log" 2>&1 || true
        grep -q "LeakSanitizer: detected memory leaks" "$probe/out.log" || ok=0
    else
        ok=0
        cat "$probe/cc.log"
    fi
    if [ "$ok" = 0 ] && [ -f "$probe/out.log" ]; then
        sed -n 1,5p "$probe/out.log"
    fi
    rm -rf "$probe"
    [ "$ok" = 1 ]
}

sanitize() {
    begin "ASan + UBSan build and tests"
    if leak_check_works; then
        leaks=1
    else
        leaks=0
        echo "WARNING: LeakSanitizer cannot run here (it needs ptrace, which this"
        echo "WARNING: container forbids): the sanitizer build checks memory errors and"
        echo "WARNING: undefined behaviour but NOT leaks; valgrind_explain (release step)"
        echo "WARNING: still checks leaks."
    fi
    # Any report ends the process with exit code 99, which no test expects.
    ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:exitcode=99:detect_leaks=$leaks:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=99"
    export ASAN_OPTIONS UBSAN_OPTIONS
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGEOLRP_SANITIZE=ON
    cmake --build build-asan -j "$JOBS"
    ctest --test-dir build-asan --output-on-failure
    unset ASAN_OPTIONS UBSAN_OPTIONS
    end "sanitize"
}

fuzz() {
    begin "fuzzers, ${FUZZ_SECONDS} s each"
    CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGEOLRP_FUZZ=ON
    cmake --build build-fuzz -j "$JOBS" --target fuzz_onnx fuzz_npy fuzz_config
    for t in onnx npy config; do
        # a copy: the fuzzer adds what it finds to the corpus it is given
        work="$root/build-fuzz/run/$t"
        rm -rf "$work"
        mkdir -p "$work/corpus" "$work/artifacts"
        cp "$root/tests/fuzz/corpus_$t/"* "$work/corpus/"
        echo "--- fuzz_$t"
        # -malloc_limit_mb: above the loader's own 8 GiB plan cap, which is what must
        # refuse big models (libFuzzer's default would report any malloc over 2 GiB);
        # the default 2 GiB resident limit still reports inputs that really use memory.
        dict=""
        [ -f "$root/tests/fuzz/$t.dict" ] && dict="-dict=$root/tests/fuzz/$t.dict"
        # shellcheck disable=SC2086 # $dict is one word or none
        if ! "$root/build-fuzz/tests/fuzz/fuzz_$t" "$work/corpus" $dict \
            -max_total_time="$FUZZ_SECONDS" -timeout=20 -malloc_limit_mb=8400 \
            -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
            >"$work/log.txt" 2>&1; then
            tail -n 60 "$work/log.txt"
            echo "fuzz_$t found a problem: the input is in $work/artifacts/; add it to"
            echo "tests/fuzz/regressions/ with the fix (see DEVELOPERS.md)"
            exit 1
        fi
        grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$work/log.txt" || true
    done
    end "fuzz"
}

t0=$(date +%s)
for s in $steps; do
    case $s in
    release | sanitize | fuzz) "$s" ;;
    *) echo "unknown step '$s' (release, sanitize, fuzz)" >&2; exit 2 ;;
    esac
done
echo
echo "=== all done in $(($(date +%s) - t0)) s: $steps"
