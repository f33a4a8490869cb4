"""The report of a run: tables, then the ratio lines the targets are judged by (ratios.py)."""
import statistics

from cases import CASE_TITLES, DOWNLOADS, TARGET_TITLES, TARGETS
from ratios import ratio_lines

NOISE_CORES = 0.25


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
    if case in DOWNLOADS and r.get('mib_s') is not None:
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
    out.append('Service %s · %s · Glance %s (uwsgi, 2 workers, `Connection: close`) · HAProxy %s · %s · wrk %s, '
               '%d s per run after a %d s warm-up, `-t1` at c1, `-t2` above, `--timeout 30s`.'
               % (env['service_commit'], env['service_binary'], env['glance_version'], env.get('haproxy_version', '–'),
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
        for c in res.get('case_conns', {}).get(case, res['conns']):
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
            if case in DOWNLOADS and r.get('bytes_read'):
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
    out.append('')
    out += ratio_lines(res)
    return '\n'.join(out) + '\n'


