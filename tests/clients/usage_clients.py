"""Call the deprecated surfaces of the service with a real client, for the
usage-accounting test (tests/usage.rs). Each mode makes a fixed number of
calls and prints one line "ok <what>" (or "FAIL ...", exit 1).

usage: python usage_clients.py novaclient COMPUTE_URL TOKEN IMAGE_ID
       python usage_clients.py openstacksdk COMPUTE_URL TOKEN IMAGE_ID
       python usage_clients.py glanceclient-v1 IMAGE_URL TOKEN IMAGE_ID

novaclient (python-novaclient 7.1.2): images.list() (GET /images/detail),
images.get() (GET /images/{id}), set_meta (POST /images/{id}/metadata).
openstacksdk: compute.images() (GET /images/detail), compute.get_image()
(GET /images/{id}).
glanceclient v1: images.get() (HEAD /v1/images/{id}), images.list()
(GET /v1/images/detail).
"""
import sys

from keystoneauth1 import session
from keystoneauth1.token_endpoint import Token


def novaclient(url, token, image_id):
    from novaclient import client
    sess = session.Session(auth=Token(url, token))
    nova = client.Client('2.1', session=sess, endpoint_override=url)
    images = nova.images.list()
    image = nova.images.get(image_id)
    nova.images.set_meta(image, {'usage_test': 'novaclient'})
    return '%d images, %s' % (len(images), image.id)


def openstacksdk(url, token, image_id):
    import openstack
    # A connection of openstacksdk's own making (its User-Agent names it), as
    # `--os-auth-type admin_token` makes one.
    conn = openstack.connect(auth_type='admin_token', auth={'endpoint': url, 'token': token},
                             compute_endpoint_override=url, load_yaml_config=False, load_envvars=False)
    images = list(conn.compute.images())
    image = conn.compute.get_image(image_id)
    return '%d images, %s' % (len(images), image.id)


def glanceclient_v1(url, token, image_id):
    from glanceclient.v1 import client
    glance = client.Client(url, token=token)
    image = glance.images.get(image_id)
    images = list(glance.images.list())
    return '%d images, %s' % (len(images), image.id)


MODES = {'novaclient': novaclient, 'openstacksdk': openstacksdk, 'glanceclient-v1': glanceclient_v1}


if __name__ == '__main__':
    mode, url, token, image_id = sys.argv[1:5]
    try:
        print('ok ' + MODES[mode](url, token, image_id))
    except Exception as e:  # noqa: BLE001 - the test reads this line
        print('FAIL %s: %s' % (type(e).__name__, e))
        sys.exit(1)
