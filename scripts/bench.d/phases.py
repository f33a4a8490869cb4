"""The main run: start every target, seed it, drive each case at each concurrency, the overhead A/B pairs,
CPU per MiB of the downloads, Glance calls per request and start-up times."""
import json
import os
import re
import shutil
import time

import instructions
import targets as tg
from cases import (AB_CASES, AB_VARIANTS, CASE_TITLES, DEFAULT_CONNS, DOWNLOADS, TARGET_TITLES, TARGETS,
                   VARYING, body_for, requests_for, static_paths)
from common import (ADMIN_TOKEN, BIG_ID, BIG_MIB, HOST, N_IMAGES, CpuWatch, http, log, pick_port, rss_kib,
                    rss_tree_kib, seed,
                    service_args, start_service)
from load import AccessLog, Sampler, compilers_running, count_glance_calls, parse_wrk, run_wrk, settle_log, \
    startup_series
from report import cell

NOISE_CORES = 0.25  # CPU used by processes outside this benchmark during a run above which it is marked noisy
TREES = ('glance', 'nova')   # targets measured as a process tree (uwsgi master + workers)


def start_all(a, res, procs, work):
    """Start and seed every target; -> (targets, glance access log, front logs, A/B targets)."""
    targets = res['targets']
    gport = pick_port(2)
    glance, gpid, gstate = tg.start_glance(procs, work, gport)
    targets['glance'] = {'url': glance, 'pid': gpid}
    res['rss_kib']['glance'] = {'start': rss_tree_kib(gpid)}
    log('seeding Glance: %d reference images + one of %d MiB' % (N_IMAGES, BIG_MIB))
    res['seeding']['glance_s'] = round(seed(glance, 'admin:admin'), 1)
    glance_log = AccessLog(os.path.join(gstate, 'logs', 'glance-api.log'))

    if shutil.which('haproxy'):
        hurl, hpid, hver = tg.start_haproxy(procs, work, pick_port(20), gport)
        targets['haproxy'] = {'url': hurl, 'pid': hpid}
        res['environment']['haproxy_version'] = hver
    else:
        res['failures'].append('HAProxy: not installed (scripts/debian-tools.sh install)')

    sp, sip = pick_port(22), pick_port(23)
    log('starting the service on Glance: %s:%d, image listener %s:%d' % (HOST, sp, HOST, sip))
    t0 = time.monotonic()
    svc_g = start_service(procs, 'svc-glance', sp, sip, glance=glance)
    targets['svc-glance'] = {'url': 'http://%s:%d' % (HOST, sp), 'image_url': 'http://%s:%d' % (HOST, sip),
                             'pid': svc_g.pid, 'first_answer_s': round(time.monotonic() - t0, 3)}
    res['rss_kib']['svc-glance'] = {'start': rss_kib(svc_g.pid)}

    ep, eip = pick_port(24), pick_port(25)
    emb_dir = os.path.join(work, 'embedded')
    log('starting the service on a fresh embedded store: %s:%d, image listener %s:%d' % (HOST, ep, HOST, eip))
    svc_e = start_service(procs, 'svc-embedded', ep, eip, data_dir=emb_dir)
    res['rss_kib']['svc-embedded'] = {'start': rss_kib(svc_e.pid)}
    ebase = 'http://%s:%d' % (HOST, eip)
    log('seeding the embedded store through its Glance v2 API (%s)' % ebase)
    res['seeding']['embedded_s'] = round(seed(ebase, ADMIN_TOKEN), 1)
    targets['svc-embedded'] = {'url': 'http://%s:%d' % (HOST, ep), 'image_url': ebase, 'pid': svc_e.pid,
                               'data_dir': emb_dir}

    workers = os.cpu_count() or 2
    surl, spid = tg.start_static(procs, work, pick_port(26), targets['svc-embedded']['url'], static_paths(),
                                 workers)
    targets['static'] = {'url': surl, 'pid': spid}

    why = 'no Nova: --no-nova given' if a.no_nova else tg.nova_available()
    if why:
        res['skipped'].append('Nova 34: ' + why)
        front_nova = None
    else:
        try:
            nurl, npid, nver, front_nova = tg.start_nova(procs, work, pick_port(30), glance)
            targets['nova'] = {'url': nurl, 'pid': npid}
            res['environment']['nova_version'] = nver
        except RuntimeError as e:
            res['failures'].append('Nova 34: %s' % e)
            front_nova = None

    ab = {}
    if any(c in AB_CASES for c in res['cases']):
        for name, (title, env) in AB_VARIANTS.items():
            p, ip = pick_port(40), pick_port(41)
            if env is None:
                env = {'NOVA_IMAGES_PROXY__SERVER__METRICS_BIND': '%s:%d' % (HOST, pick_port(50))}
            d = os.path.join(work, name)
            log('starting %s (%s) on a fresh embedded store: %s:%d' % (name, title, HOST, p))
            proc = start_service(procs, name, p, ip, data_dir=d, env=env)
            seed('http://%s:%d' % (HOST, ip), ADMIN_TOKEN, big=False)
            ab[name] = {'url': 'http://%s:%d' % (HOST, p), 'pid': proc.pid, 'title': title, 'env': env,
                        'data_dir': d}
        if 'NOVA_IMAGES_PROXY__SERVER__METRICS_BIND' in ab['emb-metrics']['env']:
            murl = 'http://%s/metrics' % ab['emb-metrics']['env']['NOVA_IMAGES_PROXY__SERVER__METRICS_BIND']
            st, _, _ = http('GET', murl, token=None)
            if st != 200:
                res['failures'].append('metrics on: %s answered %s' % (murl, st))
    front_logs = {'svc-glance': AccessLog(os.path.join(work, 'svc-glance.log'), 'service')}
    if front_nova:
        front_logs['nova'] = AccessLog(front_nova)
    return glance_log, front_logs, ab, gstate


def v1_bases(res):
    v1 = {}
    for t in ('svc-glance', 'svc-embedded'):
        info = res['targets'].get(t)
        if not info:
            continue
        st, hdrs, _ = http('HEAD', '%s/v1/images/%s' % (info['image_url'], BIG_ID))
        if st == 200 and hdrs.get('x-image-meta-size') == str(BIG_MIB << 20):
            v1[t] = info['image_url']
        else:
            res['failures'].append('Glance v1 on %s: HEAD /v1/images/{id} answered %s' % (TARGET_TITLES[t], st))
    return v1


def measure(res, work, t, case, c, req, duration, warmup, watch_all, glance_log, front_logs):
    """One wrk run of (method, url, body, ctype) = req at c connections against target t; -> record."""
    targets = res['targets']
    method, url, body, ctype = req
    rec = {'case': case, 'conns': c, 'target': t, 'method': method, 'url': url}
    try:
        b = body_for(case, body, 'sanity')
        st, _, _ = http(method, url, b.encode() if b else None, ctype, timeout=60)
    except OSError as e:
        st = str(e)
    if not isinstance(st, int) or not 200 <= st < 300:
        rec['error'] = 'sanity request answered %s' % st
        res['failures'].append('%s c%d %s: %s %s answered %s' % (case, c, t, method, url, st))
        return rec
    vary = case in VARYING

    def drain():
        # requests still queued in Glance/Nova (a client that went away does not cancel them there) would eat
        # into the next measurement: wait until their logs stop growing
        settle_log(glance_log, quiet=0.5)
        if 'nova' in front_logs:
            settle_log(front_logs['nova'], quiet=0.5)
    drain()
    run_wrk(work, method, url, body, ctype, c, warmup, latency=False, varying=vary)
    drain()
    # RSS: every target at the highest concurrency, the target itself at every level
    keys = [k for k in targets if c == max(res['conns']) or k == t] if watch_all is targets else [t]
    watch = {k: (watch_all[k]['pid'], k in TREES) for k in keys}
    sampler = Sampler(watch)
    busy_before = compilers_running()
    front = front_logs.get(t)
    if front:
        log_before = (settle_log(glance_log), settle_log(front))
    elif t == 'glance':
        g_before = settle_log(glance_log)
    cpu = CpuWatch({k: info['pid'] for k, info in watch_all.items()})
    sampler.start()
    cpu.start()
    args, wrc, out = run_wrk(work, method, url, body, ctype, c, duration, varying=vary)
    rec.update(cpu.stop())
    peak = sampler.finish()
    rec.update(parse_wrk(out))
    if t in peak:
        rec['rss_peak_kib'] = peak[t]
    if front:
        g_after, f_after = settle_log(glance_log, quiet=1.0), settle_log(front, quiet=1.0)
        dg, df = g_after - log_before[0], f_after - log_before[1]
        if df == 0:      # the front logs no per-request line: fall back to wrk's count
            df = rec.get('requests') or 0
        rec['glance_calls_counted'], rec['front_requests_counted'] = dg, df
        if df:
            rec['glance_calls_under_load'] = round(dg / df, 3)
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
    if watch_all is targets and c == max(res['conns']):
        for k, v in peak.items():
            m = res['rss_kib'].setdefault(k, {})
            m['peak_under_load'] = max(m.get('peak_under_load', 0), v)
    return rec


def run_matrix(res, work, reqs, duration, warmup, conns, glance_log, front_logs):
    targets = res['targets']
    plan = []
    for case in res['cases']:
        for c in (conns or DEFAULT_CONNS.get(case, [1, 16, 64])):
            for t in TARGETS:
                if t in targets and case in reqs[t]:
                    plan.append((case, c, t))
    res['case_conns'] = {case: sorted({c for k, c, _ in plan if k == case}) for case in res['cases']}
    for n, (case, c, t) in enumerate(plan, 1):
        rec = measure(res, work, t, case, c, reqs[t][case], duration, warmup, targets, glance_log, front_logs)
        res['runs'].append(rec)
        log('[%d/%d] %-17s c%-2d %-12s %s' % (n, len(plan), case, c, t, cell(rec, case)))


def run_ab(res, work, ab, duration, warmup, rounds, glance_log):
    """The overhead pairs: each variant's show and detail-20 at c16 and c64, `rounds` times, in rotating order
    so that drift on the machine reaches every variant alike; the median of each is compared: the service's
    CPU per request (what the setting costs) and the throughput (which wrk's share of the 2 cores also moves)."""
    names = list(ab)
    for case in [c for c in AB_CASES if c in res['cases']]:
        for c in (16, 64):
            got = {n: [] for n in names}
            cpu = {n: [] for n in names}
            for r in range(rounds):
                order = names[r % len(names):] + names[:r % len(names)]
                for n in order:
                    req = requests_for('svc-embedded', ab[n]['url'], None)[case]
                    rec = measure(res, work, n, case, c, req, duration, warmup, ab, glance_log, {})
                    got[n].append(rec.get('rps') or 0)
                    spent = rec.get('cpu_s', {}).get(n)
                    if rec.get('requests') and spent is not None:
                        cpu[n].append(1e6 * spent / rec['requests'])
                    log('A/B %-9s c%-2d %-11s round %d: %s, %s µs CPU per request'
                        % (case, c, n, r + 1, cell(rec, case), '%.1f' % cpu[n][-1] if cpu[n] else '?'))
            res['ab'].append({'case': case, 'conns': c, 'rps': got, 'cpu_us_per_request': cpu})


def run_cpu_per_mib(res, v1):
    """CPU per MiB of 8 sequential downloads through each path, every process involved measured alike."""
    t = res['targets']
    mib = BIG_MIB
    paths = [('Glance direct', {'Glance': t['glance']['pid']}, '%s/v2/images/%s/file' % (t['glance']['url'], BIG_ID))]
    if 'haproxy' in t:
        paths.append(('HAProxy on Glance', {'HAProxy': t['haproxy']['pid'], 'Glance': t['glance']['pid']},
                      '%s/v2/images/%s/file' % (t['haproxy']['url'], BIG_ID)))
    if 'svc-glance' in v1:
        paths.append(('service on Glance, v1 GET', {'service': t['svc-glance']['pid'], 'Glance': t['glance']['pid']},
                      '%s/v1/images/%s' % (v1['svc-glance'], BIG_ID)))
    if 'svc-embedded' in v1:
        paths.append(('service, embedded, v1 GET', {'service': t['svc-embedded']['pid']},
                      '%s/v1/images/%s' % (v1['svc-embedded'], BIG_ID)))
        paths.append(('service, embedded, v2 download', {'service': t['svc-embedded']['pid']},
                      '%s/v2/images/%s/file' % (v1['svc-embedded'], BIG_ID)))
    for title, pids, url in paths:
        try:
            tg.cpu_per_mib(pids, url, mib, n=2)     # warm-up
            res['cpu_per_mib'][title] = tg.cpu_per_mib(pids, url, mib)
            log('CPU per MiB, %s: %s' % (title, res['cpu_per_mib'][title]))
        except (RuntimeError, OSError) as e:
            res['failures'].append('CPU per MiB, %s: %s' % (title, e))


def glance_errors(gstate):
    """Glance's error lines (e.g. the 500s of concurrent PATCHes), counted by message."""
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
    return dict(sorted(errs.items(), key=lambda kv: -kv[1])[:10])


def run(a, res, procs, duration, warmup, conns, cases):
    work = procs.work
    glance_log, front_logs, ab, gstate = start_all(a, res, procs, work)
    targets = res['targets']
    counts = {}
    for t, info in targets.items():
        if t == 'haproxy':
            continue
        url = info['url'] + ('/v2/images?limit=1000' if t == 'glance' else '/v2.1/images?limit=1000')
        if t == 'static':
            continue
        st, _, body = http('GET', url)
        counts[t] = len(json.loads(body)['images']) if st == 200 else 'HTTP %d' % st
    res['catalogue'] = counts
    log('images listed per target: %s' % counts)
    v1 = v1_bases(res)
    reqs = {t: requests_for(t, info['url'], v1.get(t)) for t, info in targets.items()}
    for case in ('v1-head', 'v1-get-64MiB', 'v2-download-64MiB'):
        if case in cases and 'nova' in targets:
            res['skipped'].append('%s on Nova 34: Nova has no Glance image API (not applicable)' % CASE_TITLES[case])
    time.sleep(1)
    for t, info in targets.items():
        res['rss_kib'].setdefault(t, {})['idle'] = rss_tree_kib(info['pid']) if t in TREES else rss_kib(info['pid'])
    run_matrix(res, work, reqs, duration, warmup, conns, glance_log, front_logs)
    if ab:
        run_ab(res, work, ab, duration, warmup, a.ab_rounds, glance_log)
        for n in list(ab):
            for _, p in list(procs.children):
                if p.pid == ab[n]['pid']:
                    procs.stop(p)
        spec = os.path.join(work, 'static-responses.json')
        instructions.run(res, procs, ab, pick_port, spec if 'static' in targets else None)
    if any(c in DOWNLOADS for c in cases):
        run_cpu_per_mib(res, v1)
    for t, info in targets.items():
        res['rss_kib'][t]['after'] = rss_tree_kib(info['pid']) if t in TREES else rss_kib(info['pid'])
    res['glance_log_errors'] = glance_errors(gstate)
    for case in cases:
        for t in ('svc-glance', 'nova'):
            if t in targets and case in reqs[t]:
                method, url, body, ctype = reqs[t][case]
                k = 5 if case in DOWNLOADS else 20
                res['glance_calls'].setdefault(case, {})[t] = count_glance_calls(glance_log, case, method, url,
                                                                                  body, ctype, k)
    log('start-up times (5 runs each)')
    for _, p in list(procs.children):
        if p.pid in (targets['svc-glance']['pid'], targets['svc-embedded']['pid']):
            procs.stop(p)
    port, iport = pick_port(28), pick_port(29)
    res['startup']['service on Glance'] = startup_series(
        procs, 'glance', lambda i: service_args(port, iport, glance=targets['glance']['url']), port)
    res['startup']['service, embedded store with %d images' % (N_IMAGES + 1)] = startup_series(
        procs, 'embedded', lambda i: service_args(port, iport, data_dir=targets['svc-embedded']['data_dir']), port)
    res['startup']['service, new embedded store (created at start)'] = startup_series(
        procs, 'embedded-new',
        lambda i: service_args(port, iport, data_dir=os.path.join(work, 'startup-new-%d' % i)), port)
    for k, v in res['startup'].items():
        if v['errors']:
            res['failures'].append('start-up (%s): %s' % (k, '; '.join(v['errors'])))
    log('start-up medians: %s' % {k: v['median_ms'] for k, v in res['startup'].items()})
