"""What each case asks of each target."""
from common import BIG_ID, META_INDEX, SHOW_INDEX, image_id

CASES = ['show', 'detail-20', 'list-200', 'metadata-list', 'metadata-post', 'v1-head', 'v1-get-64MiB',
         'v2-download-64MiB']
CASE_TITLES = {
    'show': 'show one image',
    'detail-20': 'detail list, limit=20',
    'list-200': 'list, limit=200 (whole catalogue)',
    'metadata-list': 'metadata list',
    'metadata-post': 'metadata POST, one key',
    'v1-head': 'Glance v1 HEAD (64 MiB image)',
    'v1-get-64MiB': 'Glance v1 GET, 64 MiB data',
    'v2-download-64MiB': 'Glance v2 download, 64 MiB data',
}
DOWNLOADS = {'v1-get-64MiB', 'v2-download-64MiB'}
# concurrency levels when --conns is not given: downloads at 1, 8 and 64, the rest at 1, 16 and 64
DEFAULT_CONNS = {'v1-get-64MiB': [1, 8, 64], 'v2-download-64MiB': [1, 8, 64]}
STATIC_CASES = ['show', 'detail-20', 'metadata-list']   # answered by the static-response limit too
TARGETS = ['glance', 'haproxy', 'svc-glance', 'svc-embedded', 'static', 'nova']
TARGET_TITLES = {'glance': 'Glance direct', 'haproxy': 'HAProxy on Glance', 'svc-glance': 'service on Glance',
                 'svc-embedded': 'service, embedded', 'static': 'static limit', 'nova': 'Nova 34 on Glance'}
# the A/B pairs of the overhead checks: the same embedded store, one setting changed
AB_CASES = ['show', 'detail-20']
AB_VARIANTS = {'emb-base': ('metrics off, usage on (defaults)', {}),
               'emb-metrics': ('metrics on (server.metrics_bind)', None),   # env filled in with a port
               'emb-nousage': ('usage accounting off', {'NOVA_IMAGES_PROXY__USAGE__ENABLED': 'false'})}
PATCH_CT = 'application/openstack-images-v2.1-json-patch'
VARYING = {'metadata-post'}   # bodies hold '%s': a new value per request, so every write changes the image


def body_for(case, body, n):
    return (body % n) if (body is not None and case in VARYING) else body


def requests_for(target, base, v1base):
    """case -> (method, url, body, content-type), for one target."""
    show, meta, big = image_id(SHOW_INDEX), image_id(META_INDEX), BIG_ID
    if target in ('glance', 'haproxy'):
        r = {'v1-get-64MiB': ('GET', '%s/v2/images/%s/file' % (base, big), None, None),
             'v2-download-64MiB': ('GET', '%s/v2/images/%s/file' % (base, big), None, None)}
        if target == 'haproxy':
            return r
        r.update({
            'show': ('GET', '%s/v2/images/%s' % (base, show), None, None),
            'detail-20': ('GET', base + '/v2/images?limit=20', None, None),
            'list-200': ('GET', base + '/v2/images?limit=200', None, None),
            'metadata-list': ('GET', '%s/v2/images/%s' % (base, show), None, None),
            'metadata-post': ('PATCH', '%s/v2/images/%s' % (base, meta),
                              '[{"op": "add", "path": "/bench_key", "value": "v-%s"}]', PATCH_CT),
            'v1-head': ('GET', '%s/v2/images/%s' % (base, big), None, None),
        })
        return r
    r = {
        'show': ('GET', '%s/v2.1/images/%s' % (base, show), None, None),
        'detail-20': ('GET', base + '/v2.1/images/detail?limit=20', None, None),
        'list-200': ('GET', base + '/v2.1/images?limit=200', None, None),
        'metadata-list': ('GET', '%s/v2.1/images/%s/metadata' % (base, show), None, None),
        'metadata-post': ('POST', '%s/v2.1/images/%s/metadata' % (base, meta),
                          '{"metadata": {"bench_key": "v-%s"}}', 'application/json'),
    }
    if target == 'static':
        return {k: v for k, v in r.items() if k in STATIC_CASES}
    if v1base:
        r['v1-head'] = ('HEAD', '%s/v1/images/%s' % (v1base, big), None, None)
        r['v1-get-64MiB'] = ('GET', '%s/v1/images/%s' % (v1base, big), None, None)
    if v1base and target == 'svc-embedded':
        r['v2-download-64MiB'] = ('GET', '%s/v2/images/%s/file' % (v1base, big), None, None)
    return r


def static_paths():
    """The paths (with query) the static limit answers: the service's own requests of STATIC_CASES."""
    r = requests_for('svc-embedded', '', None)
    return [r[c][1] for c in STATIC_CASES]
