"""Starting what the benchmark measures: Glance (scripts/glance.sh), real Nova 34 (scripts/nova.sh), HAProxy
(Debian's) in front of the same Glance, the static-response limit (examples/static_limit.rs) and the sequential
downloads that give CPU per MiB."""
import json
import os
import subprocess
import sys
import time

from common import (GLANCE_SH, HOST, NOVA_SH, NOVA_VENV, STATIC_BIN, TOKEN, cmd_out, http, log,
                    proc_cpu_s, tree_pids, wait_answer)


def start_glance(procs, work, port, workers=2, name='glance'):
    """A fresh Glance on port; -> (url, uwsgi master pid, state dir)."""
    state = os.path.join(work, name)
    procs.glance_states.append(state)
    log('starting a fresh Glance on %s:%d (%d workers)' % (HOST, port, workers))
    p = subprocess.run([GLANCE_SH, 'start', '--port', str(port), '--state', state, '--fresh', '--workers',
                        str(workers)], stdout=sys.stderr, stderr=sys.stderr)
    if p.returncode != 0:
        raise RuntimeError('scripts/glance.sh start failed (%d)' % p.returncode)
    pid = int(open(os.path.join(state, 'glance-api.pid')).read().strip())
    return 'http://%s:%d' % (HOST, port), pid, state


def nova_available():
    """None when scripts/nova.sh can start Nova, else why not."""
    if not all(os.access(os.path.join(NOVA_VENV, 'bin', x), os.X_OK) for x in ('uwsgi', 'nova-manage')):
        return 'Nova is not installed in %s (scripts/nova.sh install)' % NOVA_VENV
    return None


def start_nova(procs, work, port, glance, workers=2):
    """Real Nova 34 (scripts/nova.sh) on port, fronting glance; -> (url, uwsgi master pid, version)."""
    state = os.path.join(work, 'nova')
    procs.nova_state = state
    log('starting real Nova 34 (scripts/nova.sh, %d uwsgi workers) on %s:%d, fronting %s' % (workers, HOST, port,
                                                                                          glance))
    p = subprocess.run([NOVA_SH, 'start', '--port', str(port), '--state', state, '--glance', glance, '--fresh',
                        '--workers', str(workers)], stdout=sys.stderr, stderr=sys.stderr)
    if p.returncode != 0:
        raise RuntimeError('scripts/nova.sh start failed (%d); see %s/logs' % (p.returncode, state))
    pid = int(open(os.path.join(state, 'nova-api.pid')).read().strip())
    procs.note(pid, 'nova-uwsgi-master')
    url = 'http://%s:%d' % (HOST, port)
    wait_answer(url + '/v2.1/images?limit=1', 120)
    # lazy-apps: let every worker finish importing before measuring
    for _ in range(2 * workers):
        http('GET', url + '/v2.1/images?limit=1', timeout=60)
    version = cmd_out([os.path.join(NOVA_VENV, 'bin', 'python'), '-c',
                       'import importlib.metadata as m; print(m.version("nova"))']) or '?'
    return url, pid, version, os.path.join(state, 'logs', 'nova-api.log')


HAPROXY_CFG = '''# scripts/bench: HAProxy in front of Glance, Debian's defaults (timeouts of its haproxy.cfg), no logging
global
    maxconn 4096
defaults
    mode http
    option httplog
    timeout connect 5000
    timeout client 50000
    timeout server 50000
frontend bench
    bind %s:%d
    default_backend glance
backend glance
    server glance %s:%d
'''


def start_haproxy(procs, work, port, glance_port):
    """HAProxy (Debian's package) on port in front of Glance; -> (url, pid, version)."""
    cfg = os.path.join(work, 'haproxy.cfg')
    with open(cfg, 'w') as f:
        f.write(HAPROXY_CFG % (HOST, port, HOST, glance_port))
    log('starting HAProxy on %s:%d in front of Glance' % (HOST, port))
    p = procs.spawn('haproxy', ['haproxy', '-db', '-f', cfg], os.path.join(work, 'haproxy.log'))
    url = 'http://%s:%d' % (HOST, port)
    wait_answer(url + '/versions', 30, p, ok=(200, 300))
    version = cmd_out(['haproxy', '-v']).split('\n')[0].replace('HAProxy version ', '').split(' ')[0] or '?'
    return url, p.pid, version


SKIP_HEADERS = {'date', 'content-length', 'connection', 'transfer-encoding', 'keep-alive'}


def capture(url):
    """One answer of the service as the static server replays it: status, headers (less what actix writes
    itself), body."""
    st, hdrs, body = http('GET', url)
    if st != 200:
        raise RuntimeError('capturing %s for the static limit: %s' % (url, st))
    path = url.split('://', 1)[1]
    path = path[path.index('/'):]
    return {'path': path, 'status': st, 'body': body.decode('utf-8'),
            'headers': [[k.lower(), v] for k, v in hdrs.items() if k.lower() not in SKIP_HEADERS]}


def start_static(procs, work, port, svc_base, paths, workers):
    """The static-response limit on port, answering `paths` (of the service at svc_base, captured now) with the
    service's own bodies and headers, with `workers` workers; -> (url, pid)."""
    items = [capture(svc_base + p) for p in paths]
    spec = os.path.join(work, 'static-responses.json')
    with open(spec, 'w') as f:
        json.dump(items, f)
    log('starting the static-response limit on %s:%d (%d workers, %d captured answers)' % (HOST, port, workers,
                                                                                          len(items)))
    p = procs.spawn('static-limit', [STATIC_BIN, '--bind', '%s:%d' % (HOST, port), '--workers', str(workers),
                                     '--responses', spec], os.path.join(work, 'static-limit.log'))
    url = 'http://%s:%d' % (HOST, port)
    wait_answer(url + paths[0], 30, p)
    for it in items:
        st, _, body = http('GET', url + it['path'])
        if st != 200 or body.decode('utf-8') != it['body']:
            raise RuntimeError('the static limit does not answer %s as captured' % it['path'])
    return url, p.pid


def cpu_per_mib(pids, url, mib, n=8):
    """CPU (ms) each process tree in pids {name: pid} spent per MiB over n sequential downloads of url
    (curl, one at a time), read from /proc/<pid>/stat: user + system, the same way for every process."""
    before = {k: sum(proc_cpu_s(p) for p in tree_pids(pid)) for k, pid in pids.items()}
    t0 = time.monotonic()
    got = 0
    for _ in range(n):
        p = subprocess.run(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', '-H',
                            'X-Auth-Token: ' + TOKEN, url], capture_output=True, text=True, timeout=300)
        code, size = (p.stdout.split() + ['0', '0'])[:2]
        if code != '200' or int(size) != mib << 20:
            raise RuntimeError('download of %s answered %s with %s bytes' % (url, code, size))
        got += int(size)
    wall = time.monotonic() - t0
    after = {k: sum(proc_cpu_s(p) for p in tree_pids(pid)) for k, pid in pids.items()}
    total = got / (1 << 20)
    return {'downloads': n, 'mib': total, 'mib_s': round(total / wall, 1),
            'ms_per_mib': {k: round(1000 * (after[k] - before[k]) / total, 3) for k in pids}}

