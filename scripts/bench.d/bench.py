#!/usr/bin/env python3
"""The benchmark driver behind scripts/bench (run it through scripts/bench).

Starts on loopback: a fresh real Glance (scripts/glance.sh, 2 workers), the service
(release build) on that Glance, the service on a fresh embedded store and, when the
reference harness is there, real Nova 34 fronting the same Glance. Seeds the same
images in every backend, drives each case with wrk, and reports figures and ratios
(service / Glance direct, measured in the same run). It never judges a timing: the
exit status is non-zero only when something could not run.

Standard library only. Every process it starts is recorded in WORK/pids (one
"pid name" per line) so that scripts/bench's EXIT trap can stop what is left.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, 'target', 'release', 'nova-images-proxy')
GLANCE_SH = os.path.join(ROOT, 'scripts', 'glance.sh')
GLANCE_VENV = os.environ.get('NIP_GLANCE_VENV', os.path.expanduser('~/.cache/nova-images-proxy/glance-venv'))
HARNESS = os.path.normpath(os.path.join(ROOT, '..', 'shared', 'reference', 'harness'))
NOVA_VENV = os.environ.get('NOVA_REFERENCE_VENV',
                           os.path.join(os.environ.get('NOVA_REFERENCE_HOME',
                                                       os.path.expanduser('~/.cache/nova-reference')), 'venv'))
TOKEN = 'demo:6f70656e737461636b20342065766572'
HOST = '127.0.0.1'

# The reference image set (tests/support/seed.rs, harness seed.py): deterministic ids.
NS = uuid.UUID('6f70656e-7374-6163-6b20-342065766572')
SERVER_UUIDS = ['b3f0b7a2-6c0c-4c5e-9a51-3a8f0f4f1a01', 'b3f0b7a2-6c0c-4c5e-9a51-3a8f0f4f1a02']
BDM = ('[{"boot_index": 0, "source_type": "volume", "destination_type": "volume", '
       '"snapshot_id": "5e3d2c1b-0000-4000-8000-000000000001", "delete_on_termination": false}]')
TEMPLATES = [  # (name, fields, properties, bytes, deactivate)
    ('cirros-0.6.2-x86_64-disk', dict(disk_format='qcow2', container_format='bare', visibility='public',
                                      min_disk=1, min_ram=64), {'os_distro': 'cirros', 'hw_disk_bus': 'virtio'},
     0, False),
    ('ubuntu-24.04-server', dict(disk_format='raw', container_format='bare', visibility='public', min_disk=10,
                                 min_ram=512), {'os_distro': 'ubuntu', 'os_version': '24.04',
                                                'auto_disk_config': 'True'}, 2048, False),
    ('snapshot-of-vm-1', dict(disk_format='raw', container_format='bare', visibility='private', min_disk=1,
                              min_ram=128),
     {'image_type': 'snapshot', 'instance_uuid': SERVER_UUIDS[0], 'user_id': 'demo', 'auto_disk_config': 'False',
      'base_image_ref': '', 'owner_project_name': 'demo'}, 1024, False),
    ('debian-12-genericcloud', dict(disk_format='raw', container_format='bare', visibility='shared', min_disk=2,
                                    min_ram=256),
     {'os_distro': 'debian', 'os_version': '12', 'hw_qemu_guest_agent': 'yes'}, 4096, False),
    ('protected-base', dict(disk_format='raw', container_format='bare', visibility='public', protected=True,
                            min_ram=512), {'os_distro': 'centos', 'description': 'cannot be deleted'}, 512, False),
    ('queued-empty', dict(disk_format='qcow2', container_format='bare', visibility='private'), {}, 0, False),
    ('snapshot-bdm', dict(disk_format='raw', container_format='bare', visibility='private', min_disk=20),
     {'image_type': 'snapshot', 'instance_uuid': SERVER_UUIDS[1], 'block_device_mapping': BDM,
      'root_device_name': '/dev/vda', 'bdm_v2': 'True'}, 0, False),
    ('imagé-ünïcode ☃', dict(disk_format='raw', container_format='bare', visibility='public', min_ram=2048,
                             min_disk=40), {'os_distro': 'fedora', 'hw_rng_model': 'virtio',
                                            'auto_disk_config': 'disabled'}, 300, False),
    ('deactivated-image', dict(disk_format='raw', container_format='bare', visibility='private', min_ram=64),
     {'os_distro': 'cirros'}, 256, True),
    (None, dict(disk_format='ami', container_format='ami', visibility='private'),
     {'kernel_id': '00000000-0000-4000-8000-00000000000a', 'ramdisk_id': '00000000-0000-4000-8000-00000000000b'},
     0, False),
]
N_IMAGES = 200          # reference images (index 17 is community: not listed)
BIG_MIB = 64            # + one image of 64 MiB -> 200 listed images
SHOW_INDEX = 2          # snapshot-of-vm-1: active, private, properties, server block, diskConfig
META_INDEX = 3          # debian-12-genericcloud: the metadata write target


def image_id(i):
    return str(uuid.uuid5(NS, 'harness-image-%d' % i))


BIG_ID = str(uuid.uuid5(NS, 'nip-bench-64MiB'))


def image_bytes(iid, n):
    d = hashlib.sha512(iid.encode()).digest()
    return (d * (n // len(d) + 1))[:n]


def plan():
    for i in range(N_IMAGES):
        name, fields, props, nbytes, deact = TEMPLATES[i % len(TEMPLATES)]
        rnd = i // len(TEMPLATES)
        body = {'id': image_id(i), 'name': ('%s-%d' % (name, rnd)) if (name is not None and rnd) else name}
        body.update(fields)
        body.update(props)
        if i == 17:
            body['visibility'] = 'community'
        body['tags'] = ['harness', 'tpl%d' % (i % len(TEMPLATES))]
        yield body, nbytes, deact
    yield ({'id': BIG_ID, 'name': 'bench-64MiB', 'disk_format': 'raw', 'container_format': 'bare',
            'visibility': 'public', 'os_distro': 'bench'}, BIG_MIB << 20, False)


# ----------------------------------------------------------------------------- helpers

def log(*a):
    print('bench:', *a, file=sys.stderr, flush=True)


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method, url, body=None, ctype=None, token=TOKEN, timeout=120):
    """-> (status, headers, body bytes); HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method)
    if token:
        req.add_header('X-Auth-Token', token)
    if ctype:
        req.add_header('Content-Type', ctype)
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def port_free(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


_TAKEN = set()


def pick_port(preferred):
    for p in range(preferred, preferred + 200):
        if p not in _TAKEN and port_free(p):
            _TAKEN.add(p)
            return p
    raise RuntimeError('no free port near %d' % preferred)


def rss_kib(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def tree_pids(pid):
    out, todo = [pid], [pid]
    while todo:
        p = todo.pop()
        try:
            with open('/proc/%d/task/%d/children' % (p, p)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            kids = []
        out += kids
        todo += kids
    return out


def rss_tree_kib(pid):
    return sum(rss_kib(p) for p in tree_pids(pid))


def compilers_running():
    return subprocess.run(['pgrep', '-x', 'rustc|cargo'], stdout=subprocess.DEVNULL).returncode == 0


CLK = os.sysconf('SC_CLK_TCK')


def cpu_busy_s():
    """Machine-wide user+nice+system CPU seconds (irq/softirq left out: no process is charged for them)."""
    with open('/proc/stat') as f:
        v = f.readline().split()[1:]
    return (int(v[0]) + int(v[1]) + int(v[2])) / CLK


def proc_cpu_s(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            v = f.read().rsplit(')', 1)[1].split()
        return (int(v[11]) + int(v[12])) / CLK
    except (OSError, IndexError, ValueError):
        return 0.0


class CpuWatch:
    """CPU used during a run by the processes of this benchmark and by everything else ("other")."""

    def __init__(self, roots):
        self.roots = roots   # name -> pid whose process tree is ours (Glance, Nova, services)

    def _each(self):
        return {k: sum(proc_cpu_s(p) for p in tree_pids(r)) for k, r in self.roots.items()}

    def _ours(self, each):
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system   # this script, wrk, pgrep ...
        return own + sum(each.values())

    def start(self):
        self.each0 = self._each()
        self.t0, self.busy0, self.ours0 = time.monotonic(), cpu_busy_s(), self._ours(self.each0)

    def stop(self):
        wall = time.monotonic() - self.t0
        each = self._each()
        busy, ours = cpu_busy_s() - self.busy0, self._ours(each) - self.ours0
        return {'wall_s': round(wall, 2), 'cpu_busy_cores': round(busy / wall, 2),
                'cpu_ours_cores': round(ours / wall, 2), 'cpu_other_cores': round(max(0.0, busy - ours) / wall, 2),
                'cpu_s': {k: round(each[k] - self.each0.get(k, 0), 3) for k in each}}


def cmd_out(args, **kw):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=60, **kw).stdout.strip()
    except Exception:  # noqa: BLE001 - informational only
        return ''


# ----------------------------------------------------------------------------- processes

class Procs:
    def __init__(self, work):
        self.work = work
        self.children = []      # (name, Popen)
        self.glance_state = None
        self.nova_state = None

    def note(self, pid, name):
        """Record "pid start-time name" for scripts/bench's EXIT trap (start time: no recycled pid)."""
        try:
            with open('/proc/%d/stat' % pid) as f:
                start = f.read().rsplit(')', 1)[1].split()[19]
        except (OSError, IndexError):
            return
        with open(os.path.join(self.work, 'pids'), 'a') as f:
            f.write('%d %s %s\n' % (pid, start, name))

    def spawn(self, name, args, logfile):
        f = open(logfile, 'ab')
        p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        f.close()
        self.children.append((name, p))
        self.note(p.pid, name)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.children = [(n, q) for n, q in self.children if q is not p]

    def nova_env(self):
        env = dict(os.environ)
        env.update(HARNESS_STATE=self.nova_state['dir'], NOVA_PORT=str(self.nova_state['port']),
                   GLANCE_PORT=str(self.nova_state['glance_port']), NOVA_REFERENCE_VENV=NOVA_VENV)
        return env

    def stop_all(self):
        for _, p in list(self.children):
            self.stop(p)
        if self.nova_state:
            subprocess.run(['bash', os.path.join(HARNESS, 'stop.sh'), 'nova'], env=self.nova_env(),
                           stdout=sys.stderr, stderr=sys.stderr)
            self.nova_state = None
        if self.glance_state:
            subprocess.run([GLANCE_SH, 'stop', '--state', self.glance_state], stdout=sys.stderr, stderr=sys.stderr)
            self.glance_state = None


def wait_answer(url, timeout=60, proc=None, ok=(200,)):
    """Poll url until it answers one of ok; -> seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError('process exited with %s before answering %s' % (proc.returncode, url))
        try:
            st, _, _ = http('GET', url, timeout=2)
            if st in ok:
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.002)
    raise RuntimeError('no answer from %s within %ss' % (url, timeout))


def start_service(procs, name, port, image_port, glance=None, data_dir=None):
    args = [BIN, '--bind', '%s:%d' % (HOST, port), '--image-bind', '%s:%d' % (HOST, image_port)]
    args += ['--glance-url', glance] if glance else ['--data-dir', data_dir, '--no-demo-images']
    p = procs.spawn(name, args, os.path.join(procs.work, name + '.log'))
    wait_answer('http://%s:%d/v2.1/images?limit=1' % (HOST, port), 60, p)
    return p


# ----------------------------------------------------------------------------- seeding

def seed(base, token):
    """Create the plan in the Glance v2 API at base; -> seconds taken."""
    t0 = time.monotonic()
    for body, nbytes, deact in plan():
        st, _, out = http('POST', base + '/v2/images', json.dumps(body).encode(), 'application/json', token)
        if st != 201:
            raise RuntimeError('create %s at %s: %s %s' % (body['id'], base, st, out[:300]))
        if nbytes:
            st, _, out = http('PUT', '%s/v2/images/%s/file' % (base, body['id']), image_bytes(body['id'], nbytes),
                              'application/octet-stream', token, timeout=600)
            if st != 204:
                raise RuntimeError('upload %s at %s: %s %s' % (body['id'], base, st, out[:300]))
        if deact:
            st, _, out = http('POST', '%s/v2/images/%s/actions/deactivate' % (base, body['id']), token=token)
            if st != 204:
                raise RuntimeError('deactivate %s at %s: %s %s' % (body['id'], base, st, out[:300]))
    return time.monotonic() - t0


# ----------------------------------------------------------------------------- cases

CASES = ['show', 'detail-20', 'list-200', 'metadata-list', 'metadata-post', 'v1-head', 'v1-get-64MiB']
CASE_TITLES = {
    'show': 'show one image',
    'detail-20': 'detail list, limit=20',
    'list-200': 'list, limit=200 (whole catalogue)',
    'metadata-list': 'metadata list',
    'metadata-post': 'metadata POST, one key',
    'v1-head': 'Glance v1 HEAD (64 MiB image)',
    'v1-get-64MiB': 'Glance v1 GET, 64 MiB data',
}
TARGETS = ['glance', 'svc-glance', 'svc-embedded', 'nova']
TARGET_TITLES = {'glance': 'Glance direct', 'svc-glance': 'service on Glance',
                 'svc-embedded': 'service, embedded', 'nova': 'Nova 34 on Glance'}
PATCH_CT = 'application/openstack-images-v2.1-json-patch'
NOISE_CORES = 0.25  # CPU used by processes outside this benchmark during a run above which it is marked noisy
VARYING = {'metadata-post'}   # bodies hold '%s': a new value per request, so every write changes the image


def body_for(case, body, n):
    return (body % n) if (body is not None and case in VARYING) else body


def requests_for(target, base, v1base):
    """case -> (method, url, body, content-type), for one target."""
    show, meta, big = image_id(SHOW_INDEX), image_id(META_INDEX), BIG_ID
    if target == 'glance':
        return {
            'show': ('GET', '%s/v2/images/%s' % (base, show), None, None),
            'detail-20': ('GET', base + '/v2/images?limit=20', None, None),
            'list-200': ('GET', base + '/v2/images?limit=200', None, None),
            'metadata-list': ('GET', '%s/v2/images/%s' % (base, show), None, None),
            'metadata-post': ('PATCH', '%s/v2/images/%s' % (base, meta),
                              '[{"op": "add", "path": "/bench_key", "value": "v-%s"}]', PATCH_CT),
            'v1-head': ('GET', '%s/v2/images/%s' % (base, big), None, None),
            'v1-get-64MiB': ('GET', '%s/v2/images/%s/file' % (base, big), None, None),
        }
    r = {
        'show': ('GET', '%s/v2.1/images/%s' % (base, show), None, None),
        'detail-20': ('GET', base + '/v2.1/images/detail?limit=20', None, None),
        'list-200': ('GET', base + '/v2.1/images?limit=200', None, None),
        'metadata-list': ('GET', '%s/v2.1/images/%s/metadata' % (base, show), None, None),
        'metadata-post': ('POST', '%s/v2.1/images/%s/metadata' % (base, meta),
                          '{"metadata": {"bench_key": "v-%s"}}', 'application/json'),
    }
    if v1base:
        r['v1-head'] = ('HEAD', '%s/v1/images/%s' % (v1base, big), None, None)
        r['v1-get-64MiB'] = ('GET', '%s/v1/images/%s' % (v1base, big), None, None)
    return r


def lua_quote(s):
    return '"%s"' % s.replace('\\', '\\\\').replace('"', '\\"')


LUA_VARYING = r'''
-- a new value per request (thread id + counter), and a tally of response statuses
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function init(args)
  statuses = {}
  counter = 0
end
function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, string.format(BODY, tid .. "-" .. counter))
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses") or {}) do all[k] = (all[k] or 0) + v end
  end
  for k, v in pairs(all) do io.write(string.format("status %d %d\n", k, v)) end
end
'''


def lua_script(work, method, body, ctype, varying=False):
    lines = ['wrk.method = %s' % lua_quote(method), 'wrk.headers["X-Auth-Token"] = %s' % lua_quote(TOKEN)]
    if body is not None and varying:
        lines.append('BODY = %s' % lua_quote(body))
        lines.append(LUA_VARYING)
    elif body is not None:
        lines.append('wrk.body = %s' % lua_quote(body))
    if ctype:
        lines.append('wrk.headers["Content-Type"] = %s' % lua_quote(ctype))
    text = '\n'.join(lines) + '\n'
    path = os.path.join(work, 'lua', hashlib.sha1(text.encode()).hexdigest()[:12] + '.lua')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
    return path


UNIT_S = {'us': 1e-6, 'ms': 1e-3, 's': 1.0, 'm': 60.0, 'h': 3600.0}
UNIT_B = {'B': 1, 'KB': 1 << 10, 'MB': 1 << 20, 'GB': 1 << 30, 'TB': 1 << 40}


def parse_wrk(out):
    r = {'rps': None, 'requests': None, 'bytes_read': None, 'p50_ms': None, 'p75_ms': None, 'p90_ms': None,
         'p99_ms': None, 'non_2xx_3xx': 0, 'socket_errors': {'connect': 0, 'read': 0, 'write': 0, 'timeout': 0},
         'mib_s': None}
    m = re.search(r'Requests/sec:\s+([\d.]+)', out)
    if m:
        r['rps'] = float(m.group(1))
    m = re.search(r'^\s+Latency\s+([\d.]+)(us|ms|s|m|h)\s', out, re.M)
    if m:
        r['mean_ms'] = round(float(m.group(1)) * UNIT_S[m.group(2)] * 1000, 3)
    m = re.search(r'(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)(B|KB|MB|GB|TB) read', out)
    if m:
        r['requests'] = int(m.group(1))
        r['bytes_read'] = int(float(m.group(4)) * UNIT_B[m.group(5)])
    for pct in ('50', '75', '90', '99'):
        m = re.search(r'^\s+%s(?:\.0+)?%%\s+([\d.]+)(us|ms|s|m|h)\s*$' % pct, out, re.M)
        if m:
            r['p%s_ms' % pct] = round(float(m.group(1)) * UNIT_S[m.group(2)] * 1000, 3)
    m = re.search(r'Non-2xx or 3xx responses:\s+(\d+)', out)
    if m:
        r['non_2xx_3xx'] = int(m.group(1))
    m = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', out)
    if m:
        r['socket_errors'] = dict(zip(('connect', 'read', 'write', 'timeout'), map(int, m.groups())))
    m = re.search(r'Transfer/sec:\s+([\d.]+)(B|KB|MB|GB|TB)', out)
    if m:
        r['mib_s'] = round(float(m.group(1)) * UNIT_B[m.group(2)] / (1 << 20), 2)
    st = {int(a): int(b) for a, b in re.findall(r'^status (\d+) (\d+)$', out, re.M)}
    if st:
        r['statuses'] = st
    return r


def run_wrk(work, method, url, body, ctype, conns, duration, latency=True, varying=False):
    script = lua_script(work, method, body, ctype, varying)
    args = ['wrk', '-t', '1' if conns == 1 else '2', '-c', str(conns), '-d', '%ds' % duration,
            '--timeout', '30s', '-s', script]
    if latency:
        args.append('--latency')
    args.append(url)
    p = subprocess.run(args, capture_output=True, text=True, timeout=duration + 120)
    return args, p.returncode, p.stdout + p.stderr


class Sampler(threading.Thread):
    """Peak RSS of some process trees every 100 ms; also notes compilers running."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids, self.peak, self.stop_ev = pids, {k: 0 for k in pids}, threading.Event()
        self.compiler_seen = False
        self.n = 0

    def run(self):
        while not self.stop_ev.is_set():
            for k, (pid, tree) in self.pids.items():
                v = rss_tree_kib(pid) if tree else rss_kib(pid)
                self.peak[k] = max(self.peak[k], v)
            if self.n % 10 == 0 and compilers_running():
                self.compiler_seen = True
            self.n += 1
            self.stop_ev.wait(0.1)

    def finish(self):
        self.stop_ev.set()
        self.join()
        return self.peak


# ----------------------------------------------------------------------------- Glance calls

ACCESS = re.compile(r'^\[pid: \d+\|app: [-\d]+\|req: [^\]]*\] \S+ \(\S*\) \{[^}]*\} \[[^\]]*\] (\S+) (\S+) '
                    r'=> generated \d+ bytes in (\d+) msecs')


class AccessLog:
    """Request lines of a log, read incrementally: [(method, path, msecs)]. kind 'uwsgi': uwsgi's
    access lines (Glance, Nova); kind 'service': the service's per-request "answered" lines."""

    def __init__(self, path, kind='uwsgi'):
        self.path, self.kind, self.pos, self.lines = path, kind, 0, []

    def poll(self):
        try:
            with open(self.path, 'rb') as f:
                f.seek(self.pos)
                data = f.read()
        except OSError:
            return len(self.lines)
        end = data.rfind(b'\n') + 1
        self.pos += end
        for line in data[:end].decode('utf-8', 'replace').splitlines():
            if self.kind == 'service':
                if ' answered' in line:
                    self.lines.append(('', '', '0'))
                continue
            m = ACCESS.match(line)
            if m:
                self.lines.append(m.groups())
        return len(self.lines)


def shape(path):
    p = path.split('?', 1)
    s = re.sub(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '{id}', p[0])
    if len(p) > 1:
        s += '?' + re.sub(r'marker=[^&]*', 'marker={id}', p[1])
    return s


def settle_log(alog, quiet=0.3, limit=120):
    """Number of lines once the log has not grown for `quiet` seconds (uwsgi logs after answering)."""
    t0 = time.monotonic()
    prev, since = alog.poll(), time.monotonic()
    while time.monotonic() - t0 < limit:
        time.sleep(0.05)
        cur = alog.poll()
        if cur != prev:
            prev, since = cur, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return prev


def count_glance_calls(alog, case, method, url, body, ctype, n):
    """Glance requests per request of (method, url), from uwsgi's access log."""
    before = settle_log(alog)
    bad = 0
    for i in range(n):
        b = body_for(case, body, 'count-%d' % i)
        st, _, _ = http(method, url, b.encode() if b else None, ctype, timeout=300)
        bad += not 200 <= st < 300
    settle_log(alog)
    lines = alog.lines[before:]
    kinds = {}
    for meth, path, _ in lines:
        k = '%s %s' % (meth, shape(path))
        kinds[k] = kinds.get(k, 0) + 1
    return {'requests': n, 'non_2xx': bad, 'glance_calls': len(lines), 'per_request': round(len(lines) / n, 2),
            'calls': {k: round(v / n, 2) for k, v in sorted(kinds.items())}}


# ----------------------------------------------------------------------------- start-up

def startup_series(procs, label, args_for, port, reps=5):
    """exec -> first 200 of GET /v2.1/images?limit=1, reps times (ms); args_for(i) -> argv."""
    times, errors = [], []
    url = 'http://%s:%d/v2.1/images?limit=1' % (HOST, port)
    for i in range(reps):
        args = args_for(i)
        logf = open(os.path.join(procs.work, 'startup-%s.log' % label), 'ab')
        t0 = time.monotonic()
        p = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logf.close()
        procs.children.append(('startup-' + label, p))
        procs.note(p.pid, 'startup-' + label)
        ok = False
        while time.monotonic() - t0 < 30 and p.poll() is None:
            try:
                st, _, _ = http('GET', url, timeout=5)
                if st == 200:
                    ok = True
                    break
            except OSError:
                pass
            time.sleep(0.001)
        if ok:
            times.append(round((time.monotonic() - t0) * 1000, 1))
        else:
            errors.append('rep %d: no 200 within 30 s (exit %s)' % (i, p.poll()))
        procs.stop(p)
    return {'ms': times, 'median_ms': statistics.median(times) if times else None, 'errors': errors}


# ----------------------------------------------------------------------------- report

def fmt_num(v, nd=1):
    if v is None:
        return '–'
    if v >= 100:
        return '%.0f' % v
    return ('%.' + str(nd) + 'f') % v


def fmt_ms(v):
    if v is None:
        return '–'
    if v >= 100:
        return '%.0f' % v
    if v >= 10:
        return '%.1f' % v
    return '%.2f' % v


def cell(r, case):
    if r is None:
        return '–'
    if r.get('error'):
        return 'failed'
    s = '%s req/s · %s/%s ms' % (fmt_num(r['rps']), fmt_ms(r['p50_ms']), fmt_ms(r['p99_ms']))
    if case == 'v1-get-64MiB' and r.get('mib_s') is not None:
        s = '%s MiB/s · %s' % (fmt_num(r['mib_s'], 0), s)
    errs = r['non_2xx_3xx'] + sum(r['socket_errors'].values())
    if errs:
        bits = []
        if r['non_2xx_3xx']:
            bits.append('%d non-2xx' % r['non_2xx_3xx'])
        se = {k: v for k, v in r['socket_errors'].items() if v}
        if se:
            bits.append('sock ' + ','.join('%s %d' % kv for kv in se.items()))
        s += ' (' + '; '.join(bits) + ')'
    if r.get('noisy'):
        s += ' ⚠'
    return s


def ratio(r, g):
    if not r or not g or r.get('error') or g.get('error') or not r.get('rps') or not g.get('rps'):
        return '–'
    return '%.2f×' % (r['rps'] / g['rps'])


def report(res):
    out = []
    env = res['environment']
    out.append('# nova-images-proxy benchmark — %s' % res['started'])
    out.append('')
    out.append('Service %s · %s · Glance %s (uwsgi, 2 workers, `Connection: close`) · %s · wrk %s, %d s per run '
               'after a %d s warm-up, `-t1` at c1, `-t2` above, `--timeout 30s`.'
               % (env['service_commit'], env['service_binary'], env['glance_version'],
                  ('Nova %s (uwsgi, 2 workers) on the same Glance' % env['nova_version']) if env.get('nova_version')
                  else 'no Nova', env['wrk'], res['duration_s'], res['warmup_s']))
    out.append('%d cores shared by wrk, Glance, Nova and the service; nothing pinned, so figures include contention. '
               'Cells: req/s · p50/p99 latency; ×G = req/s ÷ Glance direct in this run (>1 = faster than Glance). '
               'Glance-direct equivalents: show/metadata list/v1 HEAD → `GET /v2/images/{id}`, lists → '
               '`GET /v2/images?limit=N`, metadata POST → `PATCH /v2/images/{id}`, v1 GET → `GET /v2/images/{id}/file`.'
               % env['cpus'])
    out.append('')
    targets = [t for t in TARGETS if t in res['targets']]
    head = ['case', 'c'] + sum(([TARGET_TITLES[t]] + ([] if t == 'glance' else ['×G']) for t in targets), [])
    out.append('| ' + ' | '.join(head) + ' |')
    out.append('|' + '---|' * len(head))
    by = {(r['case'], r['conns'], r['target']): r for r in res['runs']}
    for case in res['cases']:
        for c in res['conns']:
            g = by.get((case, c, 'glance'))
            row = [CASE_TITLES[case], str(c)]
            for t in targets:
                r = by.get((case, c, t))
                row.append(cell(r, case))
                if t != 'glance':
                    row.append(ratio(r, g))
            out.append('| ' + ' | '.join(row) + ' |')
    noisy = [r for r in res['runs'] if r.get('noisy')]
    out.append('')
    out.append('CPU used by processes outside the benchmark during the runs: median %.2f, max %.2f cores%s.'
               % (statistics.median([r.get('cpu_other_cores', 0) for r in res['runs']] or [0]),
                  max([r.get('cpu_other_cores', 0) for r in res['runs']] or [0]),
                  ('; ⚠ marks the %d runs with more than %.2f cores of it or a rustc/cargo running (noisy)'
                   % (len(noisy), NOISE_CORES)) if noisy else ''))
    out.append('')
    out.append('| process | RSS at start | RSS idle, seeded | peak RSS under c%d (sampled every 100 ms) '
               '| own peak under load at c%s (max over cases) | RSS after the runs |'
               % (max(res['conns']), '/c'.join(map(str, res['conns']))))
    out.append('|---|---|---|---|---|---|')
    for t in targets:
        m = res['rss_kib'].get(t)
        if not m:
            continue
        f = lambda k: ('%.1f MiB' % (m[k] / 1024)) if m.get(k) else '–'
        name = TARGET_TITLES[t] + (' (uwsgi master + workers)' if t in ('glance', 'nova') else '')
        own = [r for r in res['runs'] if r['target'] == t and r.get('rss_peak_kib') and r['conns'] == max(res['conns'])]
        top = max(own, key=lambda r: r['rss_peak_kib']) if own else None
        peak = f('peak_under_load') + ((' (own peak: %.1f MiB, %s)' % (top['rss_peak_kib'] / 1024, top['case']))
                                       if top else '')
        per_c = []
        for c in res['conns']:
            v = [r['rss_peak_kib'] for r in res['runs'] if r['target'] == t and r['conns'] == c and r.get('rss_peak_kib')]
            per_c.append(('%.1f' % (max(v) / 1024)) if v else '–')
        out.append('| %s | %s | %s | %s | %s MiB | %s |' % (name, f('start'), f('idle'), peak, '/'.join(per_c),
                                                            f('after')))
    out.append('')
    out.append('| start-up: exec → first 200 of `GET /v2.1/images?limit=1` | median of 5 | all runs (ms) |')
    out.append('|---|---|---|')
    for k, v in res['startup'].items():
        out.append('| %s | %s | %s |' % (k, ('%.1f ms' % v['median_ms']) if v['median_ms'] is not None else 'failed',
                                         ', '.join('%.1f' % x for x in v['ms']) or '; '.join(v['errors'])))
    if res['glance_calls']:
        out.append('')
        out.append('| Glance calls per request (uwsgi access log) | service on Glance: one at a time | '
                   'under load (c%s) | Nova 34: one at a time | under load |' % '/c'.join(map(str, res['conns'])))
        out.append('|---|---|---|---|---|')
        for case in res['cases']:
            gc = res['glance_calls'].get(case, {})
            f = lambda d: ('%.2f (%s)' % (d['per_request'], ', '.join('%s ×%g' % kv for kv in d['calls'].items()))
                           if d else '–')
            def load(t):
                v = [by.get((case, c, t), {}).get('glance_calls_under_load') for c in res['conns']]
                return '/'.join('–' if x is None else '%.2f' % x for x in v) if any(x is not None for x in v) else '–'
            out.append('| %s | %s | %s | %s | %s |' % (CASE_TITLES[case], f(gc.get('svc-glance')), load('svc-glance'),
                                                      f(gc.get('nova')), load('nova')))
    c1 = min(res['conns'])
    rows = []
    for case in res['cases']:
        g = by.get((case, c1, 'glance'))
        cells = []
        for t in ('glance', 'svc-glance', 'nova'):
            r = by.get((case, c1, t))
            if t == 'glance':
                cells.append(('%s ms (uwsgi: %s)' % (fmt_ms(r['mean_ms']), fmt_ms(r['glance_ms_per_request'])))
                             if r and r.get('mean_ms') and r.get('glance_ms_per_request') is not None else '–')
                continue
            if r and r.get('mean_ms') and r.get('glance_ms_per_request') is not None:
                cells.append('%s ms: %s in Glance + %s elsewhere' % (
                    fmt_ms(r['mean_ms']), fmt_ms(r['glance_ms_per_request']),
                    fmt_ms(max(0.0, r['mean_ms'] - r['glance_ms_per_request']))))
            else:
                cells.append('–')
        e = by.get((case, c1, 'svc-embedded'))
        cells.append(('%s ms' % fmt_ms(e['mean_ms'])) if e and e.get('mean_ms') else '–')
        rows.append('| %s | %s |' % (CASE_TITLES[case], ' | '.join(cells)))
    if rows:
        out.append('')
        out.append('| where the time goes at c%d: mean latency (wrk) = time Glance spent on the request\'s calls '
                   '(uwsgi\'s "in N msecs") + everything else (connections, the front\'s own work, waiting) '
                   '| Glance direct | service on Glance | Nova 34 | service, embedded |' % c1)
        out.append('|---|---|---|---|---|')
        out += rows
    # CPU each process spent per request (per MiB for the download) in the run at c1
    crow = []
    for case in res['cases']:
        cells = []
        for t in ('glance', 'svc-glance', 'svc-embedded'):
            r = next((r for r in res['runs'] if r['case'] == case and r['conns'] == c1 and r['target'] == t
                      and r.get('cpu_s') and r.get('requests')), None)
            if not r:
                cells.append('–')
                continue
            per = r['requests']
            unit = 'ms/req'
            if case == 'v1-get-64MiB' and r.get('bytes_read'):
                per, unit = r['bytes_read'] / (1024 * 1024), 'ms/MiB'
            parts = []
            for who, label in (('glance', 'Glance'), (t, 'service')):
                if who in r['cpu_s'] and not (t == 'glance' and label == 'service') \
                        and not (t == 'svc-embedded' and who == 'glance'):
                    parts.append('%s %.3g' % (label, 1000 * r['cpu_s'][who] / per))
            cells.append(' + '.join(parts) + ' ' + unit)
        crow.append('| %s | %s |' % (CASE_TITLES.get(case, case), ' | '.join(cells)))
    if crow:
        out.append('')
        out.append('| CPU per request at c%d (from /proc; wrk\'s own CPU not counted) | Glance direct | '
                   'service on Glance | service, embedded |' % c1)
        out.append('|---|---|---|---|')
        out += crow
    if res.get('glance_log_errors'):
        out.append('')
        out.append('Glance logged errors (all runs): ' + '; '.join('%d× `%s`' % (v, k[:120])
                                                                  for k, v in res['glance_log_errors'].items())
                   + ' (`write error`: a client that had gone — wrk stopping at the end of a run, or the '
                   'service dropping a call whose own client had gone; `database is locked`: the non-2xx of '
                   'concurrent PATCHes)')
    if res['skipped']:
        out.append('')
        out.append('Skipped:')
        for s in res['skipped']:
            out.append('* ' + s)
    if res['failures']:
        out.append('')
        out.append('Could not run:')
        for s in res['failures']:
            out.append('* ' + s)
    return '\n'.join(out) + '\n'


# ----------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(prog='scripts/bench', description=__doc__.split('\n\n')[0])
    ap.add_argument('--duration', type=int, default=10, help='seconds per measured run (default 10)')
    ap.add_argument('--quick', action='store_true', help='3 s per run (overrides --duration)')
    ap.add_argument('--conns', default='1,16,64', help='concurrency levels (default 1,16,64)')
    ap.add_argument('--cases', default=','.join(CASES), help='cases to run (default all: %s)' % ','.join(CASES))
    ap.add_argument('--no-nova', action='store_true', help='do not start real Nova even if the harness is there')
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
           'duration_s': duration, 'warmup_s': warmup, 'conns': conns, 'cases': cases,
           'targets': {}, 'runs': [], 'rss_kib': {}, 'startup': {}, 'glance_calls': {},
           'skipped': [], 'failures': [], 'seeding': {}}
    res['environment'] = env = {
        'cpus': os.cpu_count(), 'cpu_model': next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo')
                                                   if l.startswith('model name')), '?'),
        'mem_total_kib': next((int(l.split()[1]) for l in open('/proc/meminfo') if l.startswith('MemTotal')), 0),
        'kernel': platform.release(), 'loadavg_at_start': open('/proc/loadavg').read().split()[:3],
        'wrk': cmd_out(['wrk', '-v']).split('\n')[0].replace('wrk ', '').split(' ')[0] or '?',
        'service_commit': (cmd_out(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD']) or '?') +
                          ('+dirty' if cmd_out(['git', '-C', ROOT, 'status', '--porcelain', '--', 'src', 'Cargo.toml',
                                                'Cargo.lock']) else ''),
        'service_binary': 'release build',
        'rustc': cmd_out(['rustc', '--version']),
        'glance_version': cmd_out([os.path.join(GLANCE_VENV, 'bin', 'python'), '-c',
                                   'import importlib.metadata as m; print(m.version("glance"))']) or '?',
        'pinning': 'none: wrk, Glance, Nova and the service share all cores',
        'service_workers': 'default (one per core)', 'service_log_level': 'default (info), to a file',
        'glance_workers': 2,
    }
    work = a.work
    procs = Procs(work)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt('signal %d' % signum)
    signal.signal(signal.SIGTERM, on_signal)
    rc = 0
    try:
        run(a, res, procs, work, duration, warmup, conns, cases)
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
    if rc == 130:
        return rc
    if res['failures']:
        rc = 1
    text = report(res)
    os.makedirs(os.path.join(ROOT, 'bench'), exist_ok=True)
    stamp = time.strftime('%Y%m%dT%H%M%S')
    json_path = os.path.join(ROOT, 'bench', 'results-%s.json' % stamp)
    with open(json_path, 'w') as f:
        json.dump(res, f, indent=1, ensure_ascii=False)
        f.write('\n')
    with open(os.path.join(ROOT, 'bench', 'latest.md'), 'w') as f:
        f.write(text)
    sys.stdout.write(text)
    sys.stdout.flush()
    log('results: %s, bench/latest.md' % os.path.relpath(json_path, ROOT))
    return rc


def run(a, res, procs, work, duration, warmup, conns, cases):
    env = res['environment']
    targets = res['targets']

    # -- Glance
    gport = pick_port(int(os.environ.get('NIP_BENCH_GLANCE_PORT', '19592')))
    gstate = os.path.join(work, 'glance')
    procs.glance_state = gstate
    log('starting a fresh Glance on %s:%d (2 workers)' % (HOST, gport))
    p = subprocess.run([GLANCE_SH, 'start', '--port', str(gport), '--state', gstate, '--fresh', '--workers', '2'],
                       stdout=sys.stderr, stderr=sys.stderr)
    if p.returncode != 0:
        raise RuntimeError('scripts/glance.sh start failed (%d)' % p.returncode)
    glance = 'http://%s:%d' % (HOST, gport)
    gpid = int(open(os.path.join(gstate, 'glance-api.pid')).read().strip())
    glance_log = AccessLog(os.path.join(gstate, 'logs', 'glance-api.log'))
    targets['glance'] = {'url': glance, 'pid': gpid}
    res['rss_kib']['glance'] = {'start': rss_tree_kib(gpid)}
    log('seeding Glance: %d reference images + one of %d MiB' % (N_IMAGES, BIG_MIB))
    res['seeding']['glance_s'] = round(seed(glance, 'admin:admin'), 1)

    # -- the service on Glance
    sp, sip = pick_port(19600), pick_port(19601)
    log('starting the service on Glance: %s:%d, image listener %s:%d' % (HOST, sp, HOST, sip))
    t0 = time.monotonic()
    svc_g = start_service(procs, 'svc-glance', sp, sip, glance=glance)
    targets['svc-glance'] = {'url': 'http://%s:%d' % (HOST, sp), 'image_url': 'http://%s:%d' % (HOST, sip),
                             'pid': svc_g.pid, 'first_answer_s': round(time.monotonic() - t0, 3)}
    res['rss_kib']['svc-glance'] = {'start': rss_kib(svc_g.pid)}

    # -- the service on a fresh embedded store
    ep, eip = pick_port(19610), pick_port(19611)
    emb_dir = os.path.join(work, 'embedded')
    log('starting the service on a fresh embedded store (%s): %s:%d, image listener %s:%d' % (emb_dir, HOST, ep, HOST,
                                                                                               eip))
    svc_e = start_service(procs, 'svc-embedded', ep, eip, data_dir=emb_dir)
    res['rss_kib']['svc-embedded'] = {'start': rss_kib(svc_e.pid)}
    ebase = 'http://%s:%d' % (HOST, eip)
    st, _, _ = http('GET', ebase + '/v2/images?limit=1')
    if st == 200:
        log('seeding the embedded store through its Glance v2 API (%s)' % ebase)
        try:
            res['seeding']['embedded_s'] = round(seed(ebase, TOKEN), 1)
            targets['svc-embedded'] = {'url': 'http://%s:%d' % (HOST, ep), 'image_url': ebase, 'pid': svc_e.pid,
                                       'data_dir': emb_dir}
        except RuntimeError as e:
            res['skipped'].append('service on the embedded store: seeding through its Glance v2 API failed (%s)' % e)
    else:
        res['skipped'].append('service on the embedded store: its image listener does not answer '
                              '`GET /v2/images` (%s), so it cannot be seeded with the same images' % st)
    if 'svc-embedded' not in targets:
        procs.stop(svc_e)

    # -- real Nova 34 (reference harness), on its own port, fronting the same Glance
    nova_why = None
    if a.no_nova:
        nova_why = '--no-nova given'
    elif not os.path.isdir(HARNESS):
        nova_why = 'no reference harness at %s' % HARNESS
    elif not all(os.access(os.path.join(NOVA_VENV, 'bin', x), os.X_OK) for x in ('uwsgi', 'nova-manage')):
        nova_why = 'the harness venv (%s) is not installed (run its setup.sh)' % NOVA_VENV
    if nova_why:
        res['skipped'].append('Nova 34: ' + nova_why)
    else:
        nport = pick_port(int(os.environ.get('NIP_BENCH_NOVA_PORT', '19774')))
        procs.nova_state = {'dir': os.path.join(work, 'nova-state'), 'port': nport, 'glance_port': gport}
        log('starting real Nova 34 (harness start-nova.sh) on %s:%d, fronting %s, state in %s'
            % (HOST, nport, glance, procs.nova_state['dir']))
        p = subprocess.run(['bash', os.path.join(HARNESS, 'start-nova.sh')], env=procs.nova_env(),
                           stdout=sys.stderr, stderr=sys.stderr)
        pidf = os.path.join(procs.nova_state['dir'], 'run', 'nova-api.pid')
        if os.path.exists(pidf):
            procs.note(int(open(pidf).read().strip()), 'nova-uwsgi-master')
        if p.returncode != 0:
            res['failures'].append('Nova 34: the harness start-nova.sh failed (%d); see %s/logs'
                                   % (p.returncode, procs.nova_state['dir']))
        else:
            nbase = 'http://%s:%d' % (HOST, nport)
            try:
                wait_answer(nbase + '/v2.1/images?limit=1', 120)
                npid = int(open(pidf).read().strip())
                # lazy-apps: let the second worker finish importing before measuring
                time.sleep(5)
                targets['nova'] = {'url': nbase, 'pid': npid}
                env['nova_version'] = cmd_out([os.path.join(NOVA_VENV, 'bin', 'python'), '-c',
                                               'import importlib.metadata as m; print(m.version("nova"))']) or '?'
            except RuntimeError as e:
                res['failures'].append('Nova 34: %s' % e)

    # -- the catalogue every target lists (same images everywhere?)
    counts = {}
    for t, info in targets.items():
        url = info['url'] + ('/v2/images?limit=1000' if t == 'glance' else '/v2.1/images?limit=1000')
        st, _, body = http('GET', url)
        counts[t] = len(json.loads(body)['images']) if st == 200 else 'HTTP %d' % st
    res['catalogue'] = counts
    log('images listed per target: %s' % counts)

    # -- Glance v1 on the image listeners?
    v1 = {}
    for t in ('svc-glance', 'svc-embedded'):
        if t not in targets:
            continue
        st, hdrs, _ = http('HEAD', '%s/v1/images/%s' % (targets[t]['image_url'], BIG_ID))
        if st == 200 and hdrs.get('x-image-meta-size') == str(BIG_MIB << 20):
            v1[t] = targets[t]['image_url']
        else:
            res['skipped'].append('Glance v1 cases on %s: its image listener answered HEAD /v1/images/{id} with %s'
                                  % (TARGET_TITLES[t], st))

    reqs = {t: requests_for(t, info['url'], v1.get(t)) for t, info in targets.items()}
    for case in ('v1-head', 'v1-get-64MiB'):
        if case in cases and 'nova' in targets:
            res['skipped'].append('%s on Nova 34: Nova has no Glance v1 API (not applicable)' % case)

    # -- idle RSS, seeded
    def rss_of(t):
        pid = targets[t]['pid']
        return rss_tree_kib(pid) if t in ('glance', 'nova') else rss_kib(pid)
    time.sleep(1)
    for t in targets:
        res['rss_kib'].setdefault(t, {})['idle'] = rss_of(t)

    # -- load
    def drain():
        settle_log(glance_log, quiet=0.5)
        if 'nova' in front_logs:
            settle_log(front_logs['nova'], quiet=0.5)
    front_logs = {'svc-glance': AccessLog(os.path.join(work, 'svc-glance.log'), 'service')}
    if 'nova' in targets:
        front_logs['nova'] = AccessLog(os.path.join(procs.nova_state['dir'], 'logs', 'nova-api.log'))
    total = sum(1 for case in cases for c in conns for t in targets if case in reqs[t])
    n = 0
    for case in cases:
        for c in conns:
            for t in TARGETS:
                if t not in targets or case not in reqs[t]:
                    continue
                n += 1
                method, url, body, ctype = reqs[t][case]
                rec = {'case': case, 'conns': c, 'target': t, 'method': method, 'url': url}
                # sanity: one request must succeed, or the target/case did not run
                try:
                    b = body_for(case, body, 'sanity')
                    st, _, _ = http(method, url, b.encode() if b else None, ctype, timeout=60)
                except OSError as e:
                    st = str(e)
                if not isinstance(st, int) or not 200 <= st < 300:
                    rec['error'] = 'sanity request answered %s' % st
                    res['failures'].append('%s c%d %s: %s %s answered %s' % (case, c, t, method, url, st))
                    res['runs'].append(rec)
                    continue
                vary = case in VARYING
                # requests still queued in Glance/Nova (a client that went away does not cancel them
                # there) would eat into the next measurement: wait until their logs stop growing
                drain()
                run_wrk(work, method, url, body, ctype, c, warmup, latency=False, varying=vary)
                drain()
                # RSS: every process at the highest concurrency, the target itself at every level
                watch = {k: (targets[k]['pid'], k in ('glance', 'nova')) for k in targets
                         if c == max(conns) or k == t}
                sampler = Sampler(watch)
                busy_before = compilers_running()
                front = front_logs.get(t)
                if front:
                    log_before = (settle_log(glance_log), settle_log(front))
                elif t == 'glance':
                    g_before = settle_log(glance_log)
                cpu = CpuWatch({k: info['pid'] for k, info in targets.items()})
                sampler.start()
                cpu.start()
                args, wrc, out = run_wrk(work, method, url, body, ctype, c, duration, varying=vary)
                rec.update(cpu.stop())
                peak = sampler.finish()
                rec.update(parse_wrk(out))
                if t in peak:
                    rec['rss_peak_kib'] = peak[t]
                if front:
                    # Glance calls per request answered by the front (service or Nova) during this run,
                    # both counted from their logs once they stop growing
                    g_after, f_after = settle_log(glance_log, quiet=1.0), settle_log(front, quiet=1.0)
                    dg, df = g_after - log_before[0], f_after - log_before[1]
                    if df == 0:      # the front logs no per-request line: fall back to wrk's count
                        df = rec.get('requests') or 0
                    rec['glance_calls_counted'], rec['front_requests_counted'] = dg, df
                    if df:
                        rec['glance_calls_under_load'] = round(dg / df, 3)
                        # time Glance itself spent (uwsgi's "in N msecs") per request of the front
                        ms = sum(int(x[2]) for x in glance_log.lines[log_before[0]:g_after])
                        rec['glance_ms_per_request'] = round(ms / df, 2)
                elif t == 'glance':
                    g_after = settle_log(glance_log, quiet=1.0)
                    new = glance_log.lines[g_before:g_after]
                    if new:
                        rec['glance_ms_per_request'] = round(sum(int(x[2]) for x in new) / len(new), 2)
                rec['compiler_running'] = busy_before or sampler.compiler_seen or compilers_running()
                rec['noisy'] = rec['compiler_running'] or rec['cpu_other_cores'] > NOISE_CORES
                rec['wrk_args'] = args
                rec['wrk_output'] = out
                if wrc != 0 or rec['rps'] is None:
                    rec['error'] = 'wrk exited %d' % wrc
                    res['failures'].append('%s c%d %s: wrk exited %d: %s' % (case, c, t, wrc, out.strip()[-300:]))
                if c == max(conns):
                    # the target under load is the one that counts; but Glance also works for the service on it
                    for k, v in peak.items():
                        m = res['rss_kib'].setdefault(k, {})
                        m['peak_under_load'] = max(m.get('peak_under_load', 0), v)
                res['runs'].append(rec)
                log('[%d/%d] %-13s c%-2d %-12s %s' % (n, total, case, c, t, cell(rec, case)))
    for t in targets:
        res['rss_kib'][t]['after'] = rss_of(t)
    # Glance's error lines (e.g. the 500s of concurrent PATCHes), counted by message
    errs = {}
    try:
        with open(os.path.join(gstate, 'logs', 'glance-api.log'), errors='replace') as f:
            for line in f:
                m = re.match(r'^\S+ \S+ \d+ (ERROR|CRITICAL) (\S+) \[[^\]]*\] (.*)', line)
                if m and m.group(2) != 'stevedore.extension':   # optional store drivers, at start
                    k = '%s %s: %s' % (m.group(1), m.group(2), m.group(3)[:160])
                    errs[k] = errs.get(k, 0) + 1
    except OSError:
        pass
    res['glance_log_errors'] = dict(sorted(errs.items(), key=lambda kv: -kv[1])[:10])

    # -- Glance calls per request (service on Glance, Nova), from uwsgi's access log
    for case in cases:
        for t in ('svc-glance', 'nova'):
            if t in targets and case in reqs[t]:
                method, url, body, ctype = reqs[t][case]
                k = 5 if case == 'v1-get-64MiB' else 20
                res['glance_calls'].setdefault(case, {})[t] = count_glance_calls(glance_log, case, method, url,
                                                                                  body, ctype, k)
    log('Glance calls per request: %s' % {c: {t: v['per_request'] for t, v in d.items()}
                                          for c, d in res['glance_calls'].items()})

    # -- start-up: exec -> first successful answer (median of 5)
    log('start-up times (5 runs each)')
    procs.stop(svc_g)
    if 'svc-embedded' in targets:
        procs.stop(svc_e)
    port, iport = pick_port(19620), pick_port(19621)
    base_args = [BIN, '--bind', '%s:%d' % (HOST, port), '--image-bind', '%s:%d' % (HOST, iport)]
    res['startup']['service on Glance'] = startup_series(
        procs, 'glance', lambda i: base_args + ['--glance-url', glance], port)
    if 'svc-embedded' in targets:
        res['startup']['service, embedded store with %d images' % (N_IMAGES + 1)] = startup_series(
            procs, 'embedded', lambda i: base_args + ['--data-dir', emb_dir, '--no-demo-images'], port)
    res['startup']['service, new embedded store (created at start)'] = startup_series(
        procs, 'embedded-new',
        lambda i: base_args + ['--data-dir', os.path.join(work, 'startup-new-%d' % i), '--no-demo-images'], port)
    for k, v in res['startup'].items():
        if v['errors']:
            res['failures'].append('start-up (%s): %s' % (k, '; '.join(v['errors'])))
    log('start-up medians: %s' % {k: v['median_ms'] for k, v in res['startup'].items()})
    env['loadavg_at_end'] = open('/proc/loadavg').read().split()[:3]


if __name__ == '__main__':
    sys.exit(main())
