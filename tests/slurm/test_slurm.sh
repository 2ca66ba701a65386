#!/usr/bin/env bash
# A real Slurm on localhost (ctest: slurm_local). Starts a private one-node cluster
# (start-local-slurm.sh: munged, slurmctld, slurmd), runs geolrp through sbatch as a user
# would (docs/cluster.md), compares the results with a local run bit for bit, and stops
# every daemon and removes everything again, also when it fails.
#
# Cases:
#   case_parts          one scene split across a job array of `geolrp explain --part`,
#                       then a dependent `geolrp merge` job (--dependency=afterok)
#   case_batch_shards   an archive over a job array of `geolrp batch` shards and a
#                       dependent `geolrp merge-manifest` job
#
# Needs root, Debian's slurm-wlm and munge (scripts/install-deps.sh), /usr/bin/python3
# with torch, onnx, numpy and GDAL. Never skips: a missing piece is a failure that says
# what is missing.
#
# Usage: test_slurm.sh PATH/TO/geolrp        (GEOLRP_SLURM_KEEP=1 keeps the work folder)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export REPO
PY=/usr/bin/python3
GEOLRP=$(realpath "${1:?usage: test_slurm.sh PATH/TO/geolrp}")
TIMEOUT=${GEOLRP_SLURM_TIMEOUT:-600}   # seconds for the jobs of one case
T0=$SECONDS

fail() {
    echo "test_slurm: FAIL: $*" >&2
    exit 1
}
[ -x "$GEOLRP" ] || fail "no geolrp binary at $GEOLRP"
[ -x "$PY" ] || fail "$PY not found"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/geolrp-slurm.XXXXXX")
chmod 755 "$WORK"
SLURM_DIR=$WORK/slurm
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ $rc -ne 0 ]; then
        for log in "$SLURM_DIR"/log/*.log; do
            [ -f "$log" ] && { echo "---- $log (last 40 lines)" >&2; tail -n 40 "$log" >&2; }
        done
    fi
    "$HERE/stop-local-slurm.sh" "$SLURM_DIR" || echo "test_slurm: daemons did not all stop" >&2
    if [ "${GEOLRP_SLURM_KEEP:-0}" = 1 ]; then
        echo "test_slurm: kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Job ids done: 0 when every job (and array task) completed with exit 0; else prints them.
jobs_completed() {
    local bad=0 line
    for id in "$@"; do
        while IFS= read -r line; do
            case $line in
            *JobState=COMPLETED*ExitCode=0:0*) ;;
            *) echo "job $id: $(grep -o 'JobId=[^ ]*\|ArrayTaskId=[^ ]*\|JobState=[^ ]*\|Reason=[^ ]*\|ExitCode=[^ ]*' <<<"$line" | tr '\n' ' ')" >&2
               bad=1 ;;
            esac
        done < <(scontrol -o show job "$id" 2>&1)
    done
    return $bad
}

# Waits (bounded) until none of the jobs is pending or running.
wait_jobs() {
    local ids deadline=$((SECONDS + TIMEOUT))
    ids=$(IFS=,; echo "$*")
    while [ -n "$(squeue -h -j "$ids" -o %i 2>/dev/null)" ]; do
        if [ $SECONDS -ge $deadline ]; then
            squeue -j "$ids" >&2 || true
            fail "jobs $ids still queued or running after $TIMEOUT s"
        fi
        sleep 1
    done
}

show_job_logs() { # DIR
    for f in "$1"/*.out; do
        [ -f "$f" ] && { echo "---- $f" >&2; cat "$f" >&2; }
    done
}

# ------------------------------------------------------------------------------- data ---
DATA=$WORK/data
mkdir -p "$DATA"
"$PY" - "$DATA" <<'PYEOF' || fail "cannot make the test model and scene (torch, onnx, GDAL?)"
import os, sys
sys.path.insert(0, os.path.join(os.environ['REPO'], 'tests', 'python'))
import scene_testlib as L
out = sys.argv[1]
if not os.path.exists(L.LANDSAT8):
    sys.exit('test scene %s not found' % L.LANDSAT8)
L.make_cnn(os.path.join(out, 'model.onnx'), 10, tile=32, classes=3, seed=1,
           class_names=['water', 'land', 'cloud'])
# 220 x 197: 11 tile rows at the default stride of 16
L.crop(L.LANDSAT8, os.path.join(out, 'scene.tif'), 60, 150, 220, 197)
PYEOF
SCENE=$DATA/scene.tif
MODEL=$DATA/model.onnx

# ------------------------------------------------------------------------------ slurm ---
"$HERE/start-local-slurm.sh" "$SLURM_DIR" || fail "could not start a local Slurm (see above)"
# shellcheck disable=SC1091
. "$SLURM_DIR/env.sh"

# ------------------------------------------------------------------------------ cases ---

# One scene, N parts: an array of explain --part tasks and a merge that waits for them.
case_parts() {
    local n=3 d=$WORK/parts
    mkdir -p "$d/jobs" "$d/local"
    cat > "$d/part.sbatch" <<SB
#!/bin/bash
#SBATCH --job-name=geolrp-part
#SBATCH --cpus-per-task=1
#SBATCH --output=$d/jobs/part-%a.out
set -euo pipefail
exec "$GEOLRP" explain "$SCENE" -m "$MODEL" \\
    --part "\$SLURM_ARRAY_TASK_ID/\$SLURM_ARRAY_TASK_COUNT" \\
    -o "$d/part-\$SLURM_ARRAY_TASK_ID.glrp" --threads 1 -q
SB
    cat > "$d/merge.sbatch" <<SB
#!/bin/bash
#SBATCH --job-name=geolrp-merge
#SBATCH --cpus-per-task=1
#SBATCH --output=$d/jobs/merge.out
set -euo pipefail
exec "$GEOLRP" merge "$d"/part-*.glrp -o "$d/relevance.tif" --class-map "$d/classes.tif" \\
    --scores "$d/scores.tif" --report "$d/run.json" --bands-report "$d/bands.json" -q
SB
    local array merge
    array=$(sbatch --parsable --array=0-$((n - 1)) "$d/part.sbatch") || fail "sbatch of the part array"
    merge=$(sbatch --parsable --dependency=afterok:"$array" --kill-on-invalid-dep=yes \
        "$d/merge.sbatch") || fail "sbatch of the merge job"
    echo "test_slurm: parts: array job $array ($n tasks), merge job $merge after it"
    wait_jobs "$array" "$merge"
    jobs_completed "$array" "$merge" || { show_job_logs "$d/jobs"; fail "parts: a job did not complete"; }
    [ "$(find "$d" -maxdepth 1 -name 'part-*.glrp' | wc -l)" = "$n" ] ||
        fail "parts: expected $n part files"
    # the same run on this machine, without Slurm
    "$GEOLRP" explain "$SCENE" -m "$MODEL" -o "$d/local/relevance.tif" \
        --class-map "$d/local/classes.tif" --scores "$d/local/scores.tif" \
        --report "$d/local/run.json" --bands-report "$d/local/bands.json" -q ||
        fail "parts: the local run failed"
    "$PY" "$HERE/compare_outputs.py" "$d/local" "$d" relevance.tif classes.tif scores.tif \
        relevance.qml classes.qml run.json bands.json ||
        fail "parts: the merged outputs differ from a single local run"
    echo "test_slurm: parts: merged outputs equal the local run bit for bit"
}

# An archive over an array of `geolrp batch` shards (each task takes its shard from
# SLURM_ARRAY_*), then `geolrp merge-manifest`, compared with a local unsharded batch.
case_batch_shards() {
    local n=2 d=$WORK/batch
    mkdir -p "$d/jobs" "$d/in" "$d/local"
    "$PY" - "$d/in" <<'PYEOF' || fail "batch: cannot make the scenes"
import os, sys
sys.path.insert(0, os.path.join(os.environ['REPO'], 'tests', 'python'))
import scene_testlib as L
for k, (x, y) in enumerate([(0, 0), (200, 100), (400, 300)]):
    L.crop(L.LANDSAT8, os.path.join(sys.argv[1], 'scene%d.tif' % k), x, y, 130, 120)
PYEOF
    cat > "$d/shard.sbatch" <<SB
#!/bin/bash
#SBATCH --job-name=geolrp-batch
#SBATCH --cpus-per-task=1
#SBATCH --output=$d/jobs/shard-%a.out
set -euo pipefail
# the shard comes from SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT
exec "$GEOLRP" batch "$d/in" -m "$MODEL" -O "$d/out" --threads 1 -q
SB
    local array merge
    array=$(sbatch --parsable --array=0-$((n - 1)) "$d/shard.sbatch") || fail "sbatch of the batch array"
    merge=$(sbatch --parsable --dependency=afterok:"$array" --kill-on-invalid-dep=yes \
        --output="$d/jobs/merge-manifest.out" --wrap "\"$GEOLRP\" merge-manifest \"$d/out\"") ||
        fail "sbatch of the merge-manifest job"
    wait_jobs "$array" "$merge"
    jobs_completed "$array" "$merge" || { show_job_logs "$d/jobs"; fail "batch: a job did not complete"; }
    "$GEOLRP" batch "$d/in" -m "$MODEL" -O "$d/local" --threads 1 -q || fail "batch: local run"
    local names
    names=$(cd "$d/local" && find . -name '*.tif' -o -name '*.qml' | sort)
    [ -n "$names" ] || fail "batch: the local run wrote no rasters"
    # shellcheck disable=SC2086
    "$PY" "$HERE/compare_outputs.py" "$d/local" "$d/out" $names ||
        fail "batch: sharded outputs differ from a local batch"
    [ -f "$d/out/manifest.merged.json" ] || fail "batch: merge-manifest wrote no manifest.merged.json"
    "$PY" - "$d/out/manifest.merged.json" <<'PYEOF' || fail "batch: the merged manifest is not complete"
import json, sys
m = json.load(open(sys.argv[1]))
scenes = m['scenes']
assert len(scenes) == 3 and all(s['status'] == 'done' for s in scenes), scenes
PYEOF
    echo "test_slurm: batch: sharded outputs equal the local batch"
}

case_parts
case_batch_shards
echo "test_slurm: PASS ($((SECONDS - T0)) s)"
