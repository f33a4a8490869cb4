"""The ratio lines: every figure a performance target is set on, measured in this run, with the target beside
it. Informational: the benchmark never fails on them."""
import statistics


def _rps(by, case, c, t):
    r = by.get((case, c, t))
    return r.get('rps') if r and not r.get('error') else None


def _line(name, value, target, met):
    verdict = '–' if met is None else ('met' if met else 'NOT met')
    return '* %s: **%s** (target %s: %s)' % (name, value, target, verdict)


def _ratio_line(out, by, name, case, conns, num, den, floor):
    for c in conns:
        a, b = _rps(by, case, c, num), _rps(by, case, c, den)
        target = 'none, a reference' if floor is None else '≥ %.2f×' % floor
        if a is None or b is None:
            out.append(_line('%s, c%d' % (name, c), 'not measured', target, None))
            continue
        out.append(_line('%s, c%d' % (name, c), '%.2f× (%.0f vs %.0f %s)' % (
            a / b, *((by[(case, c, num)]['mib_s'], by[(case, c, den)]['mib_s'], 'MiB/s') if 'MiB' in case
                     else (a, b, 'req/s'))), target, None if floor is None else a / b >= floor))


def ratio_lines(res):
    by = {(r['case'], r['conns'], r['target']): r for r in res['runs']}
    cc = res.get('case_conns', {})
    out = ['## Ratios (this run)', '']
    dl = cc.get('v1-get-64MiB', [])
    _ratio_line(out, by, 'v1 GET, service on Glance ÷ HAProxy on the same Glance', 'v1-get-64MiB', dl,
                'svc-glance', 'haproxy', 1.2)
    _ratio_line(out, by, 'v1 GET, HAProxy ÷ Glance direct (reference)', 'v1-get-64MiB', dl, 'haproxy', 'glance', None)
    cpm = res.get('cpu_per_mib', {})
    for title, m in cpm.items():
        parts = ', '.join('%s %.3f ms' % kv for kv in m['ms_per_mib'].items())
        svc = m['ms_per_mib'].get('service')
        if title == 'service on Glance, v1 GET':
            out.append(_line('CPU per MiB, %s (%d sequential downloads, /proc/<pid>/stat)' % (title, m['downloads']),
                             parts, 'service ≤ 0.4 ms', svc <= 0.4))
        else:
            out.append('* CPU per MiB, %s: %s (%.0f MiB/s one at a time)' % (title, parts, m['mib_s']))
    for t in ('svc-glance', 'svc-embedded'):
        r = by.get(('v1-get-64MiB', 64, t))
        if r and r.get('rss_peak_kib'):
            kib = r['rss_peak_kib']
            out.append(_line('RSS at 64 concurrent v1 downloads, %s' % t, '%.1f MiB' % (kib / 1024), '≤ 30 MiB',
                             kib <= 30 * 1024))
    _ratio_line(out, by, 'embedded v1 GET ÷ Glance direct download', 'v1-get-64MiB', dl, 'svc-embedded', 'glance',
                1.5)
    _ratio_line(out, by, 'embedded v2 download ÷ Glance direct download', 'v2-download-64MiB',
                cc.get('v2-download-64MiB', []), 'svc-embedded', 'glance', 1.5)
    for case, floor in (('show', 0.8), ('metadata-list', 0.8), ('detail-20', 0.5)):
        _ratio_line(out, by, 'embedded %s ÷ static-response limit' % case, case,
                    [c for c in cc.get(case, []) if c in (16, 64)], 'svc-embedded', 'static', floor)
    for case in ('show', 'detail-20'):
        _ratio_line(out, by, 'service on Glance %s ÷ Glance direct' % case, case,
                    [c for c in cc.get(case, []) if c in (16, 64)], 'svc-glance', 'glance', 0.95)
    for c in cc.get('show', []):
        r = by.get(('show', c, 'svc-glance'))
        if r and r.get('requests') and r.get('cpu_s', {}).get('svc-glance') is not None:
            ms = 1000 * r['cpu_s']['svc-glance'] / r['requests']
            out.append(_line('service on Glance, its own CPU per show, c%d' % c, '%.3f ms' % ms, '≤ 0.3 ms',
                             ms <= 0.3))
    for ab in res.get('ab', []):
        med = {k: statistics.median(v) for k, v in ab['rps'].items() if v}
        cpu = {k: statistics.median(v) for k, v in ab.get('cpu_us_per_request', {}).items() if v}
        base, cbase = med.get('emb-base'), cpu.get('emb-base')
        # metrics cost when on; usage accounting when on, i.e. the defaults against usage off
        for name, what, on, off in (('emb-metrics', 'metrics on vs off', 'emb-metrics', 'emb-base'),
                                    ('emb-nousage', 'usage accounting on vs off', 'emb-base', 'emb-nousage')):
            if not base or not med.get(name):
                continue
            tput = med[on] / med[off] - 1
            title = '%s, embedded %s, c%d (median of %d rounds)' % (what, ab['case'], ab['conns'],
                                                                    len(ab['rps'][name]))
            if cbase and cpu.get(name):
                extra = cpu[on] / cpu[off] - 1
                out.append(_line(title, '%+.1f %% CPU per request (%.1f vs %.1f µs), throughput %+.1f %%'
                                 % (100 * extra, cpu[on], cpu[off], 100 * tput),
                                 'none: CPU time moves by up to 15 % between rounds of one variant; judged on '
                                 'the instruction counts', None))
            else:
                out.append(_line(title, 'throughput %+.1f %% (%.0f vs %.0f req/s)' % (100 * tput, med[on], med[off]),
                                 'within 3 %', abs(tput) <= 0.03))
    for ab in res.get('ab_instructions', []):
        ins = ab['per_request']
        if ins.get('static') and ins.get('emb-base'):
            out.append(_line('embedded %s, instructions per request, service vs the static limit (callgrind, %d '
                             'requests)' % (ab['case'], ab['requests']),
                             '%.0f vs %.0f (the static limit %.2f× of the service)'
                             % (ins['emb-base'], ins['static'], ins['static'] / ins['emb-base']),
                             'none, a reference', None))
        for what, on, off in (('metrics on vs off', 'emb-metrics', 'emb-base'),
                              ('usage accounting on vs off', 'emb-base', 'emb-nousage')):
            if ins.get(on) and ins.get(off):
                extra = ins[on] / ins[off] - 1
                out.append(_line('%s, embedded %s, instructions per request (callgrind, %d requests)'
                                 % (what, ab['case'], ab['requests']),
                                 '%+.1f %% (%.0f vs %.0f)' % (100 * extra, ins[on], ins[off]), 'within 3 %',
                                 extra <= 0.03))
    return out
