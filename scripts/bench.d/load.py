"""Load generation (wrk), RSS sampling, access-log counting and start-up timing."""
import hashlib
import os
import re
import statistics
import subprocess
import threading
import time

from cases import body_for
from common import HOST, TOKEN, compilers_running, http, rss_kib, rss_tree_kib


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


