"""Drive the embedded store's Glance v2 API with the ecosystem's own clients.

usage: python glance_v2_client.py IMAGE_API_URL TOKEN
python-glanceclient v2: create, upload, download (with its checksum check),
update, list, deactivate/reactivate, delete. openstacksdk: list, get,
upload via create_image, download. Prints one line per check; exits 1 on
the first failure.
"""
import hashlib
import io
import sys

from glanceclient import Client
from glanceclient import exc


def check(name, ok):
    print(('ok   ' if ok else 'FAIL ') + name)
    if not ok:
        sys.exit(1)


def main():
    url, token = sys.argv[1], sys.argv[2]
    gc = Client('2', endpoint=url, token=token)
    data = bytes(range(256)) * 4096 + b'tail'
    img = gc.images.create(name='client-check', disk_format='raw', container_format='bare',
                           visibility='private', os_distro='cirros')
    check('create queued', img.status == 'queued' and img.os_distro == 'cirros')
    gc.images.upload(img.id, io.BytesIO(data), image_size=len(data))
    img = gc.images.get(img.id)
    check('upload makes it active', img.status == 'active' and img.size == len(data))
    check('checksum is md5', img.checksum == hashlib.md5(data).hexdigest())
    check('sha512 hash', img.os_hash_algo == 'sha512' and img.os_hash_value == hashlib.sha512(data).hexdigest())
    body = b''.join(gc.images.data(img.id))  # glanceclient verifies the checksum
    check('download is byte-equal', body == data)
    gc.images.update(img.id, os_distro='ubuntu', hw_disk_bus='virtio', remove_props=[])
    img = gc.images.get(img.id)
    check('update properties', img.os_distro == 'ubuntu' and img.hw_disk_bus == 'virtio')
    gc.images.update(img.id, remove_props=['hw_disk_bus'])
    check('remove a property', 'hw_disk_bus' not in gc.images.get(img.id))
    gc.image_tags.update(img.id, 'tagged')
    check('tag', 'tagged' in gc.images.get(img.id).tags)
    ids = [i.id for i in gc.images.list(filters={'name': 'client-check'})]
    check('list by name', img.id in ids)
    gc.images.deactivate(img.id)
    check('deactivated', gc.images.get(img.id).status == 'deactivated')
    try:
        b''.join(gc.images.data(img.id))
        check('download of a deactivated image refused', False)
    except exc.HTTPForbidden:
        check('download of a deactivated image refused', True)
    gc.images.reactivate(img.id)
    check('reactivated', gc.images.get(img.id).status == 'active')

    import openstack
    conn = openstack.connection.Connection(auth_type='admin_token', auth={'endpoint': url, 'token': token},
                                           image_endpoint_override=url, region_name='RegionOne')
    names = [i.name for i in conn.image.images()]
    check('openstacksdk lists', 'client-check' in names)
    sdk_img = conn.image.get_image(img.id)
    check('openstacksdk gets', sdk_img.name == 'client-check' and sdk_img.size == len(data))
    up = conn.image.create_image(name='sdk-upload', data=data[:1000], disk_format='raw',
                                 container_format='bare', validate_checksum=True)
    check('openstacksdk uploads', conn.image.get_image(up.id).status == 'active')
    got = conn.image.download_image(up, stream=False)
    check('openstacksdk downloads', bytes(got.content if hasattr(got, 'content') else got) == data[:1000])
    conn.image.delete_image(up)
    gc.images.delete(img.id)
    try:
        gc.images.get(img.id)
        check('deleted', False)
    except exc.HTTPNotFound:
        check('deleted', True)


if __name__ == '__main__':
    main()
