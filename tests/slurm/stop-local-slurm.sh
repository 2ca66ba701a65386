#!/bin/sh
# Stops what start-local-slurm.sh DIR started: cancels the jobs, shuts slurmctld and
# slurmd down, stops munged; each by the process id in its pid file, waiting up to 20 s
# before SIGKILL. Safe on a DIR where some or none of them started.
#
# Usage: stop-local-slurm.sh DIR
set -u

DIR=${1:?usage: stop-local-slurm.sh DIR}
[ -d "$DIR" ] || exit 0
export SLURM_CONF="$DIR/etc/slurm.conf"

stop_pid() { # NAME PIDFILE
    [ -f "$2" ] || return 0
    pid=$(cat "$2" 2>/dev/null || true)
    [ -n "$pid" ] || return 0
    i=0
    while kill -0 "$pid" 2>/dev/null; do
        [ $i -eq 0 ] && kill -TERM "$pid" 2>/dev/null
        [ $i -eq 40 ] && { echo "stop-local-slurm: $1 ($pid) ignores SIGTERM; SIGKILL" >&2; kill -KILL "$pid" 2>/dev/null; }
        [ $i -ge 60 ] && { echo "stop-local-slurm: $1 ($pid) does not exit" >&2; return 1; }
        i=$((i + 1))
        sleep 0.5
    done
    return 0
}

if [ -f "$SLURM_CONF" ] && [ -f "$DIR/slurmctld.pid" ]; then
    jobs=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')
    # shellcheck disable=SC2086 # one argument per job id
    [ -z "$jobs" ] || scancel $jobs 2>/dev/null
    scontrol shutdown >/dev/null 2>&1
fi
rc=0
stop_pid slurmd "$DIR/slurmd.pid" || rc=1
stop_pid slurmctld "$DIR/slurmctld.pid" || rc=1
stop_pid munged "$DIR/munge/munged.pid" || rc=1
# The cgroup file systems start-local-slurm.sh mounted because none was there.
if [ -f "$DIR/mounted-cgroup" ]; then
    umount -R "$(cat "$DIR/mounted-cgroup")" || rc=1
fi
exit $rc
