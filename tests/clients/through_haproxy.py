"""Old clients through the HAProxy recipe: openstacksdk lists flavors and
servers (Nova answers) and images (nova-images-proxy answers) through the one
compute endpoint; python-glanceclient v1 lists images through the image
endpoint (nova-images-proxy answers) and v2 lists them (Glance answers).

usage: through_haproxy.py COMPUTE_URL IMAGE_URL TOKEN
Prints one JSON object with what each call returned.
"""
import json
import sys

import glanceclient
import openstack

compute, image, token = sys.argv[1:4]
conn = openstack.connection.Connection(
    auth_type='admin_token',
    auth={'endpoint': compute + '/v2.1', 'token': token},
    compute_endpoint_override=compute + '/v2.1',
    region_name='RegionOne')
out = {
    'flavors': [f.name for f in conn.compute.flavors()],
    'servers': [s.id for s in conn.compute.servers()],
    'images': sorted(i.id for i in conn.compute.images()),
}
v1 = glanceclient.Client('1', endpoint=image, token=token)
out['v1_images'] = sorted(i.id for i in v1.images.list())
v2 = glanceclient.Client('2', endpoint=image, token=token)
out['v2_images'] = sorted(i['id'] for i in v2.images.list())
print(json.dumps(out))
