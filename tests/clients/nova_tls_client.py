"""List images through the service's TLS compute listener with openstacksdk,
the certificate verified against a CA bundle (keystoneauth's `verify`, what
`--os-cacert` sets).

usage: python nova_tls_client.py COMPUTE_URL TOKEN CAFILE
Prints "ok <n> images <names>" or the error; exits 1 on failure.
"""
import sys

import openstack
from keystoneauth1 import session
from keystoneauth1.token_endpoint import Token


def main():
    url, token, cafile = sys.argv[1:4]
    sess = session.Session(auth=Token(url, token), verify=cafile)
    conn = openstack.connection.Connection(session=sess, compute_endpoint_override=url)
    images = list(conn.compute.images())
    # A second call on the same session: keystoneauth keeps the connection open.
    image = conn.compute.get_image(images[0].id) if images else None
    print('ok %d images %s %s' % (len(images), sorted(i.name for i in images), image.name if image else '-'))


if __name__ == '__main__':
    try:
        main()
    except Exception as e:  # noqa: BLE001 - the test reads this line
        print('FAIL %s: %s' % (type(e).__name__, e))
        sys.exit(1)
