#!/usr/bin/env python3
"""The benchmark driver behind scripts/bench (run it through scripts/bench).

Starts on loopback: a fresh real Glance (scripts/glance.sh, 2 workers), HAProxy (Debian's)
in front of it, the service (release build) on that Glance, the service on a fresh embedded
store, the static-response limit (examples/static_limit.rs) answering the embedded service's
own bodies, real Nova 34 (scripts/nova.sh) fronting the same Glance, and three more embedded
services for the overhead checks (metrics on, usage accounting off). Seeds the same images in
every backend, drives each case with wrk, and reports figures and the ratios the targets are
judged by, all measured in the same run. With --scale: how cost grows with the catalogue
(scale.py). It never judges a timing: the exit status is non-zero only when something could
not run.

Standard library only. Every process it starts is recorded in WORK/pids so that
scripts/bench's EXIT trap can stop what is left.
"""
import argparse
import datetime
import json
import os
import platform
import signal
import sys
import time

import phases
import scale
from cases import CASES
from common import GLANCE_VENV, ROOT, Procs, cmd_out, log
from report import report


def environment():
    return {
        'cpus': os.cpu_count(), 'cpu_model': next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo')
                                                   if line.startswith('model name')), '?'),
        'mem_total_kib': next((int(line.split()[1]) for line in open('/proc/meminfo')
                               if line.startswith('MemTotal')), 0),
        'kernel': platform.release(), 'loadavg_at_start': open('/proc/loadavg').read().split()[:3],
        'wrk': cmd_out(['wrk', '-v']).split('\n')[0].replace('wrk ', '').split(' ')[0] or '?',
        'service_commit': (cmd_out(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD']) or '?') +
                          ('+dirty' if cmd_out(['git', '-C', ROOT, 'status', '--porcelain', '--', 'src', 'Cargo.toml',
                                                'Cargo.lock', 'examples']) else ''),
        'service_binary': 'release build',
        'rustc': cmd_out(['rustc', '--version']),
        'glance_version': cmd_out([os.path.join(GLANCE_VENV, 'bin', 'python'), '-c',
                                   'import importlib.metadata as m; print(m.version("glance"))']) or '?',
        'pinning': 'none: wrk, Glance, Nova, HAProxy and the service share all cores',
        'service_workers': 'default (one per core)', 'service_log_level': 'default (info), to a file',
        'glance_workers': 2,
    }


def save(res, text, kind):
    os.makedirs(os.path.join(ROOT, 'bench'), exist_ok=True)
    stamp = time.strftime('%Y%m%dT%H%M%S')
    json_path = os.path.join(ROOT, 'bench', '%s-%s.json' % (kind, stamp))
    with open(json_path, 'w') as f:
        json.dump(res, f, indent=1, ensure_ascii=False)
        f.write('\n')
    with open(os.path.join(ROOT, 'bench', 'latest%s.md' % ('' if kind == 'results' else '-' + kind)), 'w') as f:
        f.write(text)
    sys.stdout.write(text)
    sys.stdout.flush()
    log('results: %s' % os.path.relpath(json_path, ROOT))


def main():
    ap = argparse.ArgumentParser(prog='scripts/bench', description=__doc__.split('\n\n')[0])
    ap.add_argument('--duration', type=int, default=10, help='seconds per measured run (default 10)')
    ap.add_argument('--quick', action='store_true', help='3 s per run (overrides --duration)')
    ap.add_argument('--conns', default='', help='concurrency levels (default 1,16,64; downloads 1,8,64)')
    ap.add_argument('--cases', default=','.join(CASES), help='cases to run (default all: %s)' % ','.join(CASES))
    ap.add_argument('--no-nova', action='store_true', help='do not start real Nova 34')
    ap.add_argument('--ab-rounds', type=int, default=5, help='rounds of each overhead A/B pair (default 5)')
    ap.add_argument('--scale', action='store_true', help='measure how cost grows with the catalogue instead')
    ap.add_argument('--scale-levels', default='1000,10000,100000', help='embedded store sizes for --scale')
    ap.add_argument('--scale-glance', type=int, default=10000, help='Glance catalogue size for --scale (0: none)')
    ap.add_argument('--work', required=True, help=argparse.SUPPRESS)
    a = ap.parse_args()
    duration = 3 if a.quick else a.duration
    if duration < 1:
        ap.error('--duration must be at least 1')
    warmup = 1 if a.quick else 2
    conns = [int(c) for c in a.conns.split(',') if c]
    cases = [c for c in a.cases.split(',') if c]
    for c in cases:
        if c not in CASES:
            ap.error('unknown case %s (known: %s)' % (c, ', '.join(CASES)))

    res = {'started': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
           'duration_s': duration, 'warmup_s': warmup, 'conns': conns or [1, 16, 64], 'cases': cases,
           'targets': {}, 'runs': [], 'rss_kib': {}, 'startup': {}, 'glance_calls': {}, 'ab': [],
           'cpu_per_mib': {}, 'skipped': [], 'failures': [], 'seeding': {}, 'scale': {}}
    res['environment'] = environment()
    procs = Procs(a.work)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt('signal %d' % signum)
    signal.signal(signal.SIGTERM, on_signal)
    rc = 0
    try:
        if a.scale:
            scale.run(a, res, procs, duration, warmup)
        else:
            phases.run(a, res, procs, duration, warmup, conns, cases)
    except KeyboardInterrupt:
        log('interrupted')
        rc = 130
    except Exception as e:  # noqa: BLE001 - reported, exit 1
        log('error: %s: %s' % (type(e).__name__, e))
        res['failures'].append('%s: %s' % (type(e).__name__, e))
        rc = 1
    finally:
        log('stopping everything started')
        procs.stop_all()
    res['environment']['loadavg_at_end'] = open('/proc/loadavg').read().split()[:3]
    if rc == 130:
        return rc
    if res['failures']:
        rc = 1
    if a.scale:
        save(res, scale.report(res), 'scale')
    else:
        save(res, report(res), 'results')
    return rc


if __name__ == '__main__':
    sys.exit(main())
