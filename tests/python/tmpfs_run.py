#!/usr/bin/python3
"""Runs one command on a small tmpfs: the disk-full and read-only tests of test_robustness.py.

    tmpfs_run.py SPEC.json RESULT.json

SPEC: {"mount": DIR, "size_kb": N, "readonly": bool, "copy": [[SRC, NAME], ...],
       "cmd": [ARG, ...]}  ("{mnt}" in an argument is replaced by DIR)
RESULT: {"code": exit code, "stderr": text, "files": {NAME: sha256}} of the mount after the
command, or {"error": text} when the mount itself failed.

Mounts a tmpfs of size_kb at DIR, copies the inputs in, remounts it read-only if asked, runs
the command, records what the file system holds, and unmounts. The test runs this script
directly, or under `unshare -m` (a private mount namespace, as root in a container that
refuses mounts in its own namespace), or under `unshare -r -m` (a user namespace, as an
unprivileged user): whichever can mount. Everything the test needs is in RESULT, because in a
namespace the mount disappears with the process.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def main():
    spec_path, result_path = sys.argv[1:3]
    with open(spec_path) as f:
        spec = json.load(f)
    mnt = spec['mount']
    res = {}
    m = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%dk' % spec['size_kb'], 'tmpfs',
                        mnt], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if m.returncode != 0:
        res['error'] = 'mount: ' + m.stdout.decode('utf-8', 'replace')
    else:
        try:
            for src, name in spec.get('copy', []):
                shutil.copyfile(src, os.path.join(mnt, name))
            if spec.get('readonly'):
                subprocess.run(['mount', '-o', 'remount,ro', mnt], check=True)
            cmd = [a.replace('{mnt}', mnt) for a in spec['cmd']]
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=spec.get('timeout', 600))
            res['code'] = p.returncode
            res['stderr'] = p.stderr.decode('utf-8', 'replace')
            res['files'] = {n: sha256(os.path.join(mnt, n)) for n in sorted(os.listdir(mnt))}
        except Exception as e:  # reported to the test, which fails on it
            res['error'] = '%s: %s' % (type(e).__name__, e)
        finally:
            subprocess.run(['umount', mnt])
    with open(result_path, 'w') as f:
        json.dump(res, f)


if __name__ == '__main__':
    main()
