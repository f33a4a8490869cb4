"""scripts/bench --scale: how cost grows with the catalogue. The embedded store at 1k, 10k and 100k images (and
empty), Glance at 10k: RSS, start-up time, show, detail?limit=20, a name= filter, deep marker paging and
limit=1000, each with wrk at one connection.

Seeding: one image made through each backend's Glance v2 API, then copied in its SQLite database (images and
every table with an image_id column, new ids and names) with the service stopped: quick, and the rows are the
backend's own."""
import json
import os
import sqlite3
import time
import uuid

import targets as tg
from common import ADMIN_TOKEN, HOST, NS, http, log, pick_port, rss_kib, rss_tree_kib, service_args, start_service
from load import parse_wrk, run_wrk, startup_series

QUERIES = [('show', 'show one image'), ('detail-20', 'detail?limit=20'), ('name', 'detail?name= (one match)'),
           ('deep', 'detail?limit=20&marker= (near the end)'), ('limit-1000', 'detail?limit=1000')]
TEMPLATE = {'disk_format': 'raw', 'container_format': 'bare', 'visibility': 'public', 'min_disk': 1,
            'min_ram': 128, 'os_distro': 'ubuntu', 'os_version': '24.04', 'hw_disk_bus': 'virtio',
            'description': 'an image of the --scale catalogue', 'tags': ['scale']}


def scale_id(i):
    return str(uuid.uuid5(NS, 'nip-bench-scale-%d' % i))


def scale_name(i):
    return 'scale-%06d' % i


def create_template(base, token):
    body = dict(TEMPLATE, id=scale_id(0), name=scale_name(0))
    st, _, out = http('POST', base + '/v2/images', json.dumps(body).encode(), 'application/json', token)
    if st != 201:
        raise RuntimeError('create the --scale template at %s: %s %s' % (base, st, out[:300]))


def copy_rows(db, have, want):
    """Images have..want-1 as copies of image 0 in the SQLite database db."""
    con = sqlite3.connect(db, timeout=60)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        src = scale_id(0)
        with con:
            cols = [r[1] for r in con.execute('PRAGMA table_info(images)')]
            sel = ', '.join('?' if c in ('id', 'name') else c for c in cols)
            rows = [(scale_id(i), scale_name(i)) for i in range(have, want)]
            q = 'INSERT INTO images (%s) SELECT %s FROM images WHERE id = ?' % (', '.join(cols), sel)
            order = [c for c in cols if c in ('id', 'name')]
            con.executemany(q, [tuple(r[0] if c == 'id' else r[1] for c in order) + (src,) for r in rows])
            for t in tables:
                info = list(con.execute('PRAGMA table_info(%s)' % t))
                names = [r[1] for r in info]
                if t == 'images' or 'image_id' not in names:
                    continue
                keep = [r[1] for r in info if not (r[5] and r[2].upper() == 'INTEGER')]   # not a rowid key
                sel = ', '.join('?' if c == 'image_id' else c for c in keep)
                con.executemany('INSERT INTO %s (%s) SELECT %s FROM %s WHERE image_id = ?' % (
                    t, ', '.join(keep), sel, t), [(r[0], src) for r in rows])
    finally:
        con.close()


def queries(base, n, glance=False):
    """The requests of QUERIES for a catalogue of n images at base (Nova's API, or Glance's with glance=True)."""
    ids_desc = sorted((scale_id(i) for i in range(n)), reverse=True)   # every copy has the template's created_at
    deep = ids_desc[max(0, n - 50)]
    mid = scale_id(n // 2)
    if glance:
        return {'show': '%s/v2/images/%s' % (base, mid), 'detail-20': base + '/v2/images?limit=20',
                'name': '%s/v2/images?name=%s' % (base, scale_name(n // 2)),
                'deep': '%s/v2/images?limit=20&marker=%s' % (base, deep),
                'limit-1000': base + '/v2/images?limit=1000'}
    return {'show': '%s/v2.1/images/%s' % (base, mid), 'detail-20': base + '/v2.1/images/detail?limit=20',
            'name': '%s/v2.1/images/detail?name=%s' % (base, scale_name(n // 2)),
            'deep': '%s/v2.1/images/detail?limit=20&marker=%s' % (base, deep),
            'limit-1000': base + '/v2.1/images/detail?limit=1000'}


def measure_level(res, work, label, urls, pid, tree, duration, warmup):
    rec = {'rss_idle_kib': rss_tree_kib(pid) if tree else rss_kib(pid), 'queries': {}}
    for k, _ in QUERIES:
        url = urls[k]
        st, _, body = http('GET', url, timeout=300)
        if st != 200:
            res['failures'].append('--scale %s %s: %s answered %s' % (label, k, url, st))
            continue
        run_wrk(work, 'GET', url, None, None, 1, warmup, latency=False)
        _, wrc, out = run_wrk(work, 'GET', url, None, None, 1, duration)
        r = parse_wrk(out)
        r['body_bytes'] = len(body)
        rec['queries'][k] = r
        log('--scale %-22s %-10s %s req/s, mean %s ms' % (label, k, r['rps'], r.get('mean_ms')))
    rec['rss_after_kib'] = rss_tree_kib(pid) if tree else rss_kib(pid)
    res['scale'][label] = rec
    return rec


def run(a, res, procs, duration, warmup):
    work = procs.work
    duration = min(duration, 5)
    levels = [int(x) for x in a.scale_levels.split(',') if x]
    port, iport = pick_port(60), pick_port(61)
    d = os.path.join(work, 'scale-embedded')
    base, ibase = 'http://%s:%d' % (HOST, port), 'http://%s:%d' % (HOST, iport)
    p = start_service(procs, 'scale-embedded', port, iport, data_dir=d)
    time.sleep(1)
    res['scale']['embedded, empty'] = {'rss_idle_kib': rss_kib(p.pid), 'queries': {}}
    create_template(ibase, ADMIN_TOKEN)
    procs.stop(p)
    have = 1
    for n in levels:
        log('--scale: the embedded store at %d images' % n)
        copy_rows(os.path.join(d, 'images.sqlite'), have, n)
        have = n
        st = startup_series(procs, 'scale-%d' % n, lambda i: service_args(port, iport, data_dir=d), port, reps=3)
        p = start_service(procs, 'scale-embedded', port, iport, data_dir=d)
        time.sleep(1)
        rec = measure_level(res, work, 'embedded, %d images' % n, queries(base, n), p.pid, False, duration, warmup)
        rec['startup'] = st
        procs.stop(p)
    if a.scale_glance:
        n = a.scale_glance
        glance, gpid, gstate = tg.start_glance(procs, work, pick_port(3), name='scale-glance')
        create_template(glance, 'admin:admin')
        log('--scale: Glance at %d images' % n)
        copy_rows(os.path.join(gstate, 'glance.sqlite'), 1, n)
        measure_level(res, work, 'Glance direct, %d images' % n, queries(glance, n, glance=True), gpid, True,
                      duration, warmup)
        st = startup_series(procs, 'scale-glance', lambda i: service_args(port, iport, glance=glance), port, reps=3)
        p = start_service(procs, 'scale-svc-glance', port, iport, glance=glance)
        time.sleep(1)
        rec = measure_level(res, work, 'service on Glance, %d images' % n, queries(base, n), p.pid, False, duration,
                            warmup)
        rec['startup'] = st
        procs.stop(p)


def report(res):
    env = res['environment']
    out = ['# nova-images-proxy benchmark, --scale — %s' % res['started'], '',
           'Service %s · %s · Glance %s · wrk %s at one connection, %d s per query after a %d s warm-up. Seeded by '
           'copying one image\'s rows in SQLite (public, 4 properties, a tag).' % (
               env['service_commit'], env['service_binary'], env['glance_version'], env['wrk'],
               min(res['duration_s'], 5), res['warmup_s']), '']
    head = ['catalogue', 'RSS idle', 'RSS after', 'start-up (median of 3)'] + [t for _, t in QUERIES]
    out.append('| ' + ' | '.join(head) + ' |')
    out.append('|' + '---|' * len(head))
    for label, rec in res['scale'].items():
        st = rec.get('startup')
        row = [label, '%.1f MiB' % (rec['rss_idle_kib'] / 1024),
               ('%.1f MiB' % (rec['rss_after_kib'] / 1024)) if rec.get('rss_after_kib') else '–',
               ('%.0f ms' % st['median_ms']) if st and st['median_ms'] is not None else '–']
        for k, _ in QUERIES:
            q = rec['queries'].get(k)
            row.append('%.2f ms (%.0f req/s)' % (q['mean_ms'], q['rps']) if q and q.get('mean_ms') else '–')
        out.append('| ' + ' | '.join(row) + ' |')
    out += ['', '## Ratios (this run)', '']
    emb = [(int(k.split()[1]), v) for k, v in res['scale'].items() if k.startswith('embedded, ') and
           k.split()[1].isdigit()]
    empty = res['scale'].get('embedded, empty', {}).get('rss_idle_kib')
    if len(emb) >= 2:
        (n0, lo), (n1, hi) = emb[0], emb[-1]
        for k in ('show', 'detail-20', 'deep'):
            a, b = lo['queries'].get(k, {}).get('mean_ms'), hi['queries'].get(k, {}).get('mean_ms')
            if a and b:
                out.append('* embedded %s latency, %d ÷ %d images: **%.2f×** (target ≤ 1.20×: %s)' % (
                    k, n1, n0, b / a, 'met' if b / a <= 1.2 else 'NOT met'))
    for n, rec in emb:
        if empty:
            per = (rec['rss_idle_kib'] - empty) * 1024 / n   # both just started, before any query
            out.append('* embedded RSS per image beyond the empty store, %d images: **%.0f B** (target ≤ 1 KiB: %s)'
                       % (n, per, 'met' if per <= 1024 else 'NOT met'))
        st = rec.get('startup', {}).get('median_ms')
        if st is not None and n == max(x for x, _ in emb):
            out.append('* start-up with %d images: **%.0f ms** (target ≤ 1 s: %s)' % (n, st, 'met' if st <= 1000
                                                                                      else 'NOT met'))
    for k, _ in QUERIES:
        g = [v for lab, v in res['scale'].items() if lab.startswith('Glance direct')]
        s = [v for lab, v in res['scale'].items() if lab.startswith('service on Glance')]
        if g and s and g[0]['queries'].get(k) and s[0]['queries'].get(k):
            out.append('* service on Glance ÷ Glance direct at %s, %s: %.2f× req/s' % (
                [lab for lab in res['scale'] if lab.startswith('Glance direct')][0].split(', ')[1], k,
                s[0]['queries'][k]['rps'] / g[0]['queries'][k]['rps']))
    if res['failures']:
        out += ['', 'Could not run:'] + ['* ' + f for f in res['failures']]
    return '\n'.join(out) + '\n'

