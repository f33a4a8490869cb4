#!/usr/bin/env python3
"""Benchmark nova-images-proxy against Glance direct (see scripts/bench).

Starts on loopback: a fresh real Glance (scripts/glance.sh), the service in
release mode on that Glance, and the service on a fresh embedded store; seeds
the same 200 images (+ one of 64 MiB) in both backends; drives each case with
wrk at concurrency 1, 16 and 64 for a fixed duration; prints req/s, p50/p99
latency, errors and the ratio service/Glance-direct measured in the same run,
plus RSS (idle, peak at c64), time from exec to first answer, and Glance calls
per request. Writes bench/results-<timestamp>.json and bench/latest.md.
Never judges a timing: it reports.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = 'demo:6f70656e737461636b20342065766572'
BIN = os.path.join(ROOT, 'target', 'release', 'nova-images-proxy')
PROCS = []


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def http(method, url, body=None, ctype=None, token=TOKEN):
    req = urllib.request.Request(url, data=body, method=method)
    req.add_header('X-Auth-Token', token)
    if ctype:
        req.add_header('Content-Type', ctype)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=120) as r:
        return r.status, r.read()


def wait_up(url, timeout=30):
    start = time.time()
    while time.time() - start < timeout:
        try:
            http('GET', url)
            return time.time() - start
        except Exception:
            time.sleep(0.01)
    raise SystemExit('did not start: ' + url)


def spawn(args, env=None):
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    PROCS.append(p)
    return p


def rss_kib(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def service(port, image_port, glance=None, data_dir=None):
    args = [BIN, '--bind', '127.0.0.1:%d' % port, '--image-bind', '127.0.0.1:%d' % image_port,
            '--log-level', 'warn']
    if glance:
        args += ['--glance-url', glance]
    else:
        args += ['--data-dir', data_dir, '--no-demo-images']
    p = spawn(args)
    wait_up('http://127.0.0.1:%d/v2.1/' % port)
    return p


def seed(image_api, n, big_mib):
    """Create n images (every 4th with data and properties) and one big one."""
    ids = []
    for i in range(n):
        body = {'name': 'bench-%03d' % i, 'disk_format': 'raw', 'container_format': 'bare',
                'visibility': 'public', 'min_ram': 64 * (i % 4)}
        if i % 4 == 0:
            body.update({'os_distro': 'cirros', 'hw_disk_bus': 'virtio', 'auto_disk_config': 'True'})
        _, out = http('POST', image_api + '/v2/images', json.dumps(body).encode(), 'application/json')
        iid = json.loads(out)['id']
        if i % 4 == 0:
            http('PUT', '%s/v2/images/%s/file' % (image_api, iid), b'x' * 4096, 'application/octet-stream')
        ids.append(iid)
    _, out = http('POST', image_api + '/v2/images',
                  json.dumps({'name': 'bench-big', 'disk_format': 'raw', 'container_format': 'bare',
                              'visibility': 'public'}).encode(), 'application/json')
    big = json.loads(out)['id']
    blob = os.urandom(1024 * 1024) * big_mib
    http('PUT', '%s/v2/images/%s/file' % (image_api, big), blob, 'application/octet-stream')
    return ids, big


LUA_TEMPLATE = '''
wrk.method = "%s"
wrk.body = '%s'
wrk.headers["Content-Type"] = "%s"
wrk.headers["X-Auth-Token"] = "%s"
'''


def wrk(url, conns, duration, method='GET', body=None, ctype=None, head=False):
    args = ['wrk', '-t', '1' if conns == 1 else '2', '-c', str(conns), '-d', '%ds' % duration, '--latency',
            '-H', 'X-Auth-Token: ' + TOKEN]
    script = None
    if method != 'GET':
        script = tempfile.NamedTemporaryFile('w', suffix='.lua', delete=False)
        script.write(LUA_TEMPLATE % (method, body or '', ctype or 'application/json', TOKEN))
        script.close()
        args += ['-s', script.name]
    args.append(url)
    out = subprocess.run(args, capture_output=True, text=True).stdout
    if script:
        os.unlink(script.name)
    res = {'rps': 0.0, 'p50_ms': None, 'p99_ms': None, 'errors': 0, 'transfer_mib_s': None}
    m = re.search(r'Requests/sec:\s+([\d.]+)', out)
    if m:
        res['rps'] = float(m.group(1))
    for pct, key in (('50', 'p50_ms'), ('99', 'p99_ms')):
        m = re.search(r'\s%s%%\s+([\d.]+)(us|ms|s)' % pct, out)
        if m:
            v = float(m.group(1))
            res[key] = v / 1000 if m.group(2) == 'us' else v * 1000 if m.group(2) == 's' else v
    m = re.search(r'Non-2xx or 3xx responses:\s+(\d+)', out)
    if m:
        res['errors'] += int(m.group(1))
    m = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', out)
    if m:
        res['errors'] += sum(int(x) for x in m.groups())
    m = re.search(r'Transfer/sec:\s+([\d.]+)(KB|MB|GB|B)', out)
    if m:
        f = {'B': 1 / 1048576, 'KB': 1 / 1024, 'MB': 1, 'GB': 1024}[m.group(2)]
        res['transfer_mib_s'] = float(m.group(1)) * f
    return res


def sample_rss(pid, stop, peak):
    while not stop.is_set():
        peak[0] = max(peak[0], rss_kib(pid))
        time.sleep(0.1)


def glance_calls(glance_log, url, n=50):
    """Glance requests per service request, from Glance's access log."""
    def count():
        with open(glance_log, errors='replace') as f:
            return sum(1 for line in f if re.search(r'(GET|PATCH|PUT|POST|DELETE) /v2/', line))
    before = count()
    for _ in range(n):
        http('GET', url)
    time.sleep(0.5)
    return (count() - before) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--duration', type=int, default=10)
    ap.add_argument('--quick', action='store_true', help='3 s per run')
    ap.add_argument('--conns', default='1,16,64')
    a = ap.parse_args()
    duration = 3 if a.quick else a.duration
    conns = [int(c) for c in a.conns.split(',')]
    work = tempfile.mkdtemp(prefix='nip-bench-')
    gport = int(os.environ.get('NIP_BENCH_GLANCE_PORT', '19950'))
    gstate = os.path.join(work, 'glance')
    glance = 'http://127.0.0.1:%d' % gport
    subprocess.run([os.path.join(ROOT, 'scripts', 'glance.sh'), 'start', '--port', str(gport), '--state', gstate,
                    '--fresh', '--workers', '2'], check=True, stdout=sys.stderr)
    try:
        run(a, duration, conns, work, glance, gstate)
    finally:
        for p in PROCS:
            p.send_signal(signal.SIGTERM)
        for p in PROCS:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run([os.path.join(ROOT, 'scripts', 'glance.sh'), 'stop', '--state', gstate], stdout=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)


def run(a, duration, conns, work, glance, gstate):
    log('seeding Glance ...')
    g_ids, g_big = seed(glance, 200, 64)
    on_glance = service(18780, 18781, glance=glance)
    emb_dir = os.path.join(work, 'embedded')
    on_embedded = service(18790, 18791, data_dir=emb_dir)
    log('seeding the embedded store ...')
    e_ids, e_big = seed('http://127.0.0.1:18791', 200, 64)
    targets = {
        'glance-direct': ('http://127.0.0.1:%d' % int(glance.rsplit(':', 1)[1]), g_ids, g_big),
        'service-on-glance': ('http://127.0.0.1:18780', g_ids, g_big),
        'service-embedded': ('http://127.0.0.1:18790', e_ids, e_big),
    }
    v1 = {'service-on-glance': 'http://127.0.0.1:18781', 'service-embedded': 'http://127.0.0.1:18791'}
    show_g, show_e = g_ids[0], e_ids[0]

    def urls(target):
        base, ids, big = targets[target]
        one = ids[0]
        if target == 'glance-direct':
            return {
                'show': ('GET', '%s/v2/images/%s' % (base, one), None, None),
                'detail-20': ('GET', base + '/v2/images?limit=20', None, None),
                'list-200': ('GET', base + '/v2/images?limit=200', None, None),
                'metadata-list': ('GET', '%s/v2/images/%s' % (base, one), None, None),
                'metadata-post': ('PATCH', '%s/v2/images/%s' % (base, ids[1]),
                                  '[{"op": "add", "path": "/bench", "value": "1"}]',
                                  'application/openstack-images-v2.1-json-patch'),
                'v1-head': ('GET', '%s/v2/images/%s' % (base, one), None, None),
                'data-64MiB': ('GET', '%s/v2/images/%s/file' % (base, big), None, None),
            }
        v1base = v1[target]
        return {
            'show': ('GET', '%s/v2.1/images/%s' % (base, one), None, None),
            'detail-20': ('GET', base + '/v2.1/images/detail?limit=20', None, None),
            'list-200': ('GET', base + '/v2.1/images?limit=200', None, None),
            'metadata-list': ('GET', '%s/v2.1/images/%s/metadata' % (base, one), None, None),
            'metadata-post': ('POST', '%s/v2.1/images/%s/metadata' % (base, ids[1]),
                              '{"metadata": {"bench": "1"}}', 'application/json'),
            'v1-head': ('HEAD', '%s/v1/images/%s' % (v1base, one), None, None),
            'data-64MiB': ('GET', '%s/v1/images/%s' % (v1base, big), None, None),
        }

    results = []
    pids = {'service-on-glance': on_glance.pid, 'service-embedded': on_embedded.pid}
    idle = {k: rss_kib(p) for k, p in pids.items()}
    peak = {}
    for case in ['show', 'detail-20', 'list-200', 'metadata-list', 'metadata-post', 'v1-head', 'data-64MiB']:
        for c in conns:
            if case == 'data-64MiB' and c > 16:
                continue
            for target in targets:
                method, url, body, ctype = urls(target)[case]
                stop, pk = threading.Event(), [0]
                sampler = None
                if target in pids and c == max(conns):
                    sampler = threading.Thread(target=sample_rss, args=(pids[target], stop, pk))
                    sampler.start()
                wrk(url, c, 1, method, body, ctype)  # warm-up
                r = wrk(url, c, duration, method, body, ctype)
                if sampler:
                    stop.set()
                    sampler.join()
                    peak[target] = max(peak.get(target, 0), pk[0])
                r.update({'case': case, 'conns': c, 'target': target})
                results.append(r)
                log('%-14s c%-3d %-18s %9.1f req/s  p50 %s ms  p99 %s ms  errors %d' % (
                    case, c, target, r['rps'], r['p50_ms'], r['p99_ms'], r['errors']))
    # Time from exec to first answer (embedded, existing store; and on Glance).
    startup = {}
    for name, args in (('service-embedded', ['--data-dir', emb_dir, '--no-demo-images']),
                       ('service-on-glance', ['--glance-url', glance])):
        times = []
        for i in range(5):
            port = 18800 + i
            t0 = time.time()
            p = subprocess.Popen([BIN, '--bind', '127.0.0.1:%d' % port, '--image-bind', '127.0.0.1:%d' % (port + 50),
                                  '--log-level', 'warn'] + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while True:
                try:
                    http('GET', 'http://127.0.0.1:%d/v2.1/images?limit=1' % port)
                    break
                except Exception:
                    time.sleep(0.002)
            times.append((time.time() - t0) * 1000)
            p.send_signal(signal.SIGTERM)
            p.wait()
        startup[name] = statistics.median(times)
    glance_log = os.path.join(gstate, 'logs', 'glance-api.log')
    calls = {}
    if os.path.exists(glance_log):
        calls['show'] = glance_calls(glance_log, 'http://127.0.0.1:18780/v2.1/images/%s' % show_g)
        calls['detail-20'] = glance_calls(glance_log, 'http://127.0.0.1:18780/v2.1/images/detail?limit=20')
        calls['metadata-list'] = glance_calls(glance_log, 'http://127.0.0.1:18780/v2.1/images/%s/metadata' % show_g)
    report(results, idle, peak, startup, calls, duration)


def report(results, idle, peak, startup, calls, duration):
    by = {(r['case'], r['conns'], r['target']): r for r in results}
    lines = ['# nova-images-proxy benchmark', '',
             '%d s per run after a 1 s warm-up; wrk, Glance (2 uwsgi workers) and the service share %d cores. '
             'Ratios are service / Glance direct in this run.' % (duration, os.cpu_count() or 0), '',
             '| case | c | Glance req/s | on Glance req/s | ratio | embedded req/s | ratio | p50 / p99 ms (on Glance) | p50 / p99 ms (embedded) | errors |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for (case, c, target), r in by.items():
        if target != 'glance-direct':
            continue
        g, s, e = r, by.get((case, c, 'service-on-glance')), by.get((case, c, 'service-embedded'))
        ratio = lambda x: ('%.2f' % (x['rps'] / g['rps'])) if x and g['rps'] else '-'
        fmt = lambda x: ('%s / %s' % (round(x['p50_ms'], 2) if x['p50_ms'] is not None else '-',
                                      round(x['p99_ms'], 2) if x['p99_ms'] is not None else '-')) if x else '-'
        errs = sum(x['errors'] for x in (g, s, e) if x)
        extra = ''
        if case == 'data-64MiB':
            extra = ' (MiB/s: %.0f / %.0f / %.0f)' % tuple((x['rps'] * 64 if x else 0) for x in (g, s, e))
        lines.append('| %s%s | %d | %.1f | %.1f | %s | %.1f | %s | %s | %s | %d |' % (
            case, extra, c, g['rps'], s['rps'] if s else 0, ratio(s), e['rps'] if e else 0, ratio(e), fmt(s), fmt(e), errs))
    lines += ['', '| service | RSS idle (MiB) | RSS peak at c64 (MiB) | exec → first answer (ms, median of 5) |', '|---|---|---|---|']
    for k in ('service-on-glance', 'service-embedded'):
        lines.append('| %s | %.1f | %.1f | %.1f |' % (k, idle.get(k, 0) / 1024, peak.get(k, 0) / 1024, startup.get(k, 0)))
    if calls:
        lines += ['', 'Glance calls per request through the service (from Glance\'s access log): ' +
                  ', '.join('%s %.2f' % kv for kv in calls.items())]
    text = '\n'.join(lines)
    print(text)
    os.makedirs(os.path.join(ROOT, 'bench'), exist_ok=True)
    stamp = time.strftime('%Y%m%dT%H%M%S')
    with open(os.path.join(ROOT, 'bench', 'results-%s.json' % stamp), 'w') as f:
        json.dump({'duration_s': duration, 'results': results, 'rss_idle_kib': idle, 'rss_peak_kib': peak,
                   'startup_ms': startup, 'glance_calls_per_request': calls}, f, indent=1)
    with open(os.path.join(ROOT, 'bench', 'latest.md'), 'w') as f:
        f.write(text + '\n')


if __name__ == '__main__':
    main()
