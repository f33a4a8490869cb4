"""The overhead pairs counted in instructions: each A/B variant again on its own seeded store, under valgrind's
callgrind, driven by a fixed number of requests after a warm-up. CPU time per request on a shared 2-core machine
moves by up to 15 % between rounds of one and the same variant; the instructions a request executes do not
(two runs of one variant agree within 0.2 %), so this is the figure the ≤ 3 % overhead targets are judged on.
Callgrind runs the service's threads one at a time, so it counts work, not contention: the CPU medians beside
it still show what contention adds."""
import glob
import http.client
import os
import shutil
import subprocess
import threading
import time

from cases import AB_CASES, STATIC_CASES, requests_for
from common import HOST, STATIC_BIN, TOKEN, log, service_args, service_env, wait_answer

WARMUP = 300     # requests before the counters are zeroed (connections, caches, first-touch allocations)
MEASURED = 3000  # requests counted
CONNS = 4        # keep-alive connections driving them


def available():
    """None when valgrind is here; else why not."""
    return None if shutil.which('valgrind') and shutil.which('callgrind_control') else 'valgrind not installed'


def _drive(url, n):
    """`n` GETs of url over CONNS keep-alive connections; -> statuses other than 200."""
    rest = url.split('://', 1)[1]
    hostport, path = rest.split('/', 1)
    host, port = hostport.rsplit(':', 1)
    bad = []

    def one(k):
        c = http.client.HTTPConnection(host, int(port), timeout=120)
        for _ in range(k):
            c.request('GET', '/' + path, headers={'X-Auth-Token': TOKEN})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                bad.append(r.status)
        c.close()
    ts = [threading.Thread(target=one, args=(n // CONNS,)) for _ in range(CONNS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return bad


def _totals(path):
    for line in open(path, errors='replace'):
        if line.startswith('totals:'):
            return int(line.split()[1])
    return None


def count(procs, name, port, image_port, data_dir, env, case):
    """Instructions per request of `case` for one variant; -> (float or None, error or None)."""
    return _count(procs, name, port, case, service_args(port, image_port, data_dir=data_dir), service_env(env),
                  '/v2.1/images?limit=1')


def count_static(procs, port, spec, case, workers):
    """The same for the static-response limit answering the captured bodies of `spec`."""
    args = [STATIC_BIN, '--bind', '%s:%d' % (HOST, port), '--workers', str(workers), '--responses', spec]
    return _count(procs, 'static', port, case, args, None, requests_for('svc-embedded', '', None)[case][1])


def _count(procs, name, port, case, args, env, ready_path):
    out = os.path.join(procs.work, 'callgrind-%s-%s' % (name, case))
    os.makedirs(out, exist_ok=True)
    args = ['valgrind', '--tool=callgrind', '--callgrind-out-file=%s/cg.out' % out] + args
    p = procs.spawn('callgrind-' + name, args, os.path.join(out, 'service.log'), env=env)
    try:
        base = 'http://%s:%d' % (HOST, port)
        wait_answer(base + ready_path, 300, p)
        url = requests_for('svc-embedded', base, None)[case][1]
        bad = _drive(url, WARMUP)
        subprocess.run(['callgrind_control', '-z', str(p.pid)], capture_output=True, timeout=120, check=True)
        bad += _drive(url, MEASURED)
        subprocess.run(['callgrind_control', '-d', str(p.pid)], capture_output=True, timeout=120, check=True)
        if bad:
            return None, '%d answers were not 200 (%s)' % (len(bad), sorted(set(bad)))
        dumps = sorted(glob.glob(out + '/cg.out.*'), key=os.path.getmtime)
        total = _totals(dumps[-1]) if dumps else None
        if not total:
            return None, 'no callgrind dump in %s' % out
        return total / MEASURED, None
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        return None, str(e)
    finally:
        procs.stop(p)


def run(res, procs, ab, pick_port, static_spec=None):
    """Each variant of `ab` (already stopped; its seeded store kept) under callgrind, show and detail-20, and the
    static-response limit answering the same requests (`static_spec`: its captured answers), the floor of what a
    request costs in actix-web."""
    why = available()
    if why:
        res['failures'].append('instruction counts of the overhead pairs: %s' % why)
        return
    for case in [c for c in AB_CASES if c in res['cases']]:
        got = {}
        for n, v in ab.items():
            t0 = time.monotonic()
            ins, err = count(procs, n, pick_port(60), pick_port(61), v['data_dir'], v['env'], case)
            if err:
                res['failures'].append('instruction count %s %s: %s' % (n, case, err))
                continue
            got[n] = ins
            log('A/B %-9s %-11s %.0f instructions per request (callgrind, %d requests, %.0f s)'
                % (case, n, ins, MEASURED, time.monotonic() - t0))
        if static_spec and case in STATIC_CASES:
            ins, err = count_static(procs, pick_port(62), static_spec, case, os.cpu_count() or 2)
            if err:
                res['failures'].append('instruction count static %s: %s' % (case, err))
            else:
                got['static'] = ins
                log('%-13s %-11s %.0f instructions per request (callgrind)' % (case, 'static', ins))
        res.setdefault('ab_instructions', []).append({'case': case, 'requests': MEASURED, 'per_request': got})
