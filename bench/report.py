#!/usr/bin/python3
"""Formats bench/run.sh's measurements (JSON lines from engine_bench and torch_forward.py)
as the Markdown table of docs/benchmarks.md: tiles/s, the ratio to PyTorch's forward at
the same thread count, GFLOP per tile actually issued, achieved GFLOP/s and its share of
the sgemm peak, and each rule's time relative to epsilon-plus-flat.

Usage: /usr/bin/python3 bench/report.py ENGINE.jsonl
"""
import json
import sys


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    peak = {r['threads']: r['gflops'] for r in rows if r['what'] == 'sgemm'}
    torch = {r['threads']: r['tiles_per_s'] for r in rows if r['what'] == 'pytorch-forward'}
    flat = {r['threads']: r['tiles_per_s'] for r in rows if r['what'] == 'epsilon-plus-flat'}
    print('| threads | run | tiles/s | / PyTorch forward | GFLOP/tile | GFLOP/s | % of sgemm peak '
          '| time / epsilon-plus-flat |')
    print('|---|---|---|---|---|---|---|---|')
    for t in sorted(peak):
        print('| %d | OpenBLAS sgemm 1536^3 | | | | %.1f | 100%% | |' % (t, peak[t]))
        for r in rows:
            if r['threads'] != t or r['what'] == 'sgemm':
                continue
            tps = r['tiles_per_s']
            ratio = '%.2f' % (tps / torch[t]) if t in torch else ''
            if 'gflops' in r:
                flops = '%.3f | %.1f | %.0f%%' % (r['gflop_per_tile'], r['gflops'],
                                                   100 * r['gflops'] / peak[t])
            else:
                flops = ' | | '
            rel = ''
            if r['what'].startswith('epsilon') and t in flat:
                rel = '%.2f' % (flat[t] / tps)
            print('| %d | %s | %.1f | %s | %s | %s |' % (t, r['what'], tps, ratio, flops, rel))
    if 1 in flat and 2 in flat:
        print()
        print('2 threads / 1 thread: ' + ', '.join(
            '%s %.2fx' % (w, by[2] / by[1]) for w, by in
            [(w, {r['threads']: r['tiles_per_s'] for r in rows if r['what'] == w})
             for w in ('forward', 'epsilon-plus-flat', 'epsilon-gamma-box', 'epsilon-alpha2-beta1',
                       'pytorch-forward')] if 1 in by and 2 in by))


if __name__ == '__main__':
    main()
