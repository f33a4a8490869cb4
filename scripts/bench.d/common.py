"""Shared pieces of the benchmark driver: the image plan, HTTP, ports, /proc readings, processes, seeding."""
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, 'target', 'release', 'nova-images-proxy')
GLANCE_SH = os.path.join(ROOT, 'scripts', 'glance.sh')
GLANCE_VENV = os.environ.get('NIP_GLANCE_VENV', os.path.expanduser('~/.cache/nova-images-proxy/glance-venv'))
STATIC_BIN = os.path.join(ROOT, 'target', 'release', 'examples', 'static_limit')
NOVA_SH = os.path.join(ROOT, 'scripts', 'nova.sh')
NOVA_VENV = os.environ.get('NIP_NOVA_VENV', os.path.expanduser('~/.cache/nova-images-proxy/nova-venv'))
TOKEN = 'demo:6f70656e737461636b20342065766572'
ADMIN_TOKEN = 'admin:' + TOKEN.split(':', 1)[1]   # the same project, with the admin role (public images)
HOST = '127.0.0.1'
PORT_BASE = int(os.environ.get('NIP_BENCH_PORT_BASE', '19590'))

# The reference image set (tests/support/seed.rs): deterministic ids.
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


def pick_port(offset):
    """A free port at or after NIP_BENCH_PORT_BASE + offset (Glance at +2/+3, everything else from +20)."""
    preferred = PORT_BASE + offset
    for p in range(preferred, preferred + 100):
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
        self.glance_states = []
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

    def spawn(self, name, args, logfile, env=None):
        f = open(logfile, 'ab')
        p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
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

    def stop_all(self):
        for _, p in list(self.children):
            self.stop(p)
        if self.nova_state:
            subprocess.run([NOVA_SH, 'stop', '--state', self.nova_state], stdout=sys.stderr, stderr=sys.stderr)
            self.nova_state = None
        for state in self.glance_states:
            subprocess.run([GLANCE_SH, 'stop', '--state', state], stdout=sys.stderr, stderr=sys.stderr)
        self.glance_states = []


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


def service_args(port, image_port, glance=None, data_dir=None):
    args = [BIN, '--bind', '%s:%d' % (HOST, port), '--image-bind', '%s:%d' % (HOST, image_port)]
    return args + (['--glance-url', glance] if glance else ['--data-dir', data_dir, '--no-demo-images'])


def service_env(env=None):
    """The service's environment: this one, plus `env` (NOVA_IMAGES_PROXY__SECTION__KEY settings)."""
    e = dict(os.environ)
    e.update(env or {})
    return e


def start_service(procs, name, port, image_port, glance=None, data_dir=None, env=None, timeout=60):
    p = procs.spawn(name, service_args(port, image_port, glance, data_dir), os.path.join(procs.work, name + '.log'),
                    env=service_env(env))
    wait_answer('http://%s:%d/v2.1/images?limit=1' % (HOST, port), timeout, p)
    return p


# ----------------------------------------------------------------------------- seeding

def seed(base, token, big=True):
    """Create the plan in the Glance v2 API at base (without the 64 MiB image unless `big`); -> seconds taken."""
    t0 = time.monotonic()
    for body, nbytes, deact in plan():
        if body['id'] == BIG_ID and not big:
            continue
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


