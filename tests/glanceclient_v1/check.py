#!/usr/bin/env python3
"""python-glanceclient's Glance v1 client (glanceclient.v1) against the
Glance v1 image reads of nova-images-proxy's image listener.

Runs image.get (HEAD), image.data (GET, with glanceclient's own checksum
verification) and image.list (GET /v1/images/detail, paged by marker), and
checks what the client makes of the answers. Exits 1 on the first failed
check group, printing what differed.

Usage (see scripts/glanceclient-v1.sh):
  check.py --url http://127.0.0.1:9292 --token demo:PROJECT --image ID
           --name NAME --md5 HEX --size N --run RUN --expect-count N

The image must be active and public, with min_ram 64 and the properties
os_distro=cirros and nip_run=RUN; RUN tags --expect-count images in all.
"""

import argparse
import hashlib
import sys
import uuid

from glanceclient import exc
from glanceclient.v1 import client as v1client


class Checks:
    def __init__(self):
        self.failed = []

    def eq(self, what, got, want):
        if got != want:
            self.failed.append("%s: got %r, want %r" % (what, got, want))

    def true(self, what, cond):
        if not cond:
            self.failed.append(what)

    def report(self, what):
        """Print the outcome of the checks of `what`; exit 1 if any failed."""
        if self.failed:
            print("%s: FAILED" % what)
            for f in self.failed:
                print("  " + f)
            sys.exit(1)
        print("%s: all checks passed" % what)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--md5", required=True)
    p.add_argument("--size", required=True, type=int)
    p.add_argument("--run", required=True)
    p.add_argument("--expect-count", required=True, type=int)
    a = p.parse_args()

    c = v1client.Client(endpoint=a.url, token=a.token)
    ck = Checks()

    # image.get: HEAD /v1/images/<id>, metadata from x-image-meta-* headers.
    req_ids = []
    img = c.images.get(a.image, return_req_id=req_ids)
    # Header values are UTF-8 bytes (as Glance v1 sent them); under Python 3
    # requests hands them over decoded as Latin-1, which this undoes.
    ck.eq("get: name", img.name.encode("latin-1").decode("utf-8"), a.name)
    ck.eq("get: id", img.id, a.image)
    ck.eq("get: status", img.status, "active")
    ck.eq("get: size", img.size, a.size)
    ck.eq("get: checksum", img.checksum, a.md5)
    ck.eq("get: is_public", img.is_public, True)
    ck.eq("get: protected", img.protected, False)
    ck.eq("get: deleted", img.deleted, False)
    ck.eq("get: min_ram", img.min_ram, 64)
    ck.eq("get: min_disk", img.min_disk, 0)
    ck.eq("get: disk_format", img.disk_format, "raw")
    ck.eq("get: container_format", img.container_format, "bare")
    ck.eq("get: os_distro", img.properties.get("os_distro"), "cirros")
    ck.eq("get: nip_run", img.properties.get("nip_run"), a.run)
    ck.true("get: a request id", bool(req_ids) and str(req_ids[0]).startswith("req-"))

    # image.data: GET /v1/images/<id>; glanceclient checks the MD5 itself
    # (integrity_iter raises IOError on a mismatch) against
    # x-image-meta-checksum.
    body = c.images.data(a.image)
    ck.eq("data: length", len(body), a.size)
    md5 = hashlib.md5()
    n = 0
    for chunk in body:
        md5.update(chunk)
        n += len(chunk)
    ck.eq("data: bytes", n, a.size)
    ck.eq("data: md5", md5.hexdigest(), a.md5)

    # image.list: GET /v1/images/detail?limit=2&..., then by marker.
    filters = {"properties": {"nip_run": a.run}}
    listed = list(c.images.list(filters=filters, page_size=2, sort_key="name", sort_dir="asc"))
    ck.eq("list: count", len(listed), a.expect_count)
    names = [i.name for i in listed]
    ck.eq("list: sorted by name", names, sorted(names))
    ck.eq("list: unique ids", len({i.id for i in listed}), len(listed))
    mine = [i for i in listed if i.id == a.image]
    ck.eq("list: the image is listed", len(mine), 1)
    if mine:
        m = mine[0]
        # JSON carries the name exactly.
        ck.eq("list: name", m.name, a.name)
        ck.eq("list: size", m.size, a.size)
        ck.eq("list: checksum", m.checksum, a.md5)
        ck.eq("list: is_public", m.is_public, True)
        ck.eq("list: properties", m.properties.get("os_distro"), "cirros")
    limited = list(c.images.list(filters=filters, page_size=2, limit=3))
    ck.eq("list: limit", len(limited), 3)
    ck.eq("list: no match", list(c.images.list(filters={"name": "no-such-%s" % uuid.uuid4()})), [])

    # Errors come back as glanceclient's exceptions.
    missing = str(uuid.uuid4())
    try:
        c.images.get(missing)
        ck.true("get unknown: HTTPNotFound", False)
    except exc.HTTPNotFound:
        pass
    try:
        c.images.data(missing)
        ck.true("data unknown: HTTPNotFound", False)
    except exc.HTTPNotFound as e:
        ck.true("data unknown: message %r" % str(e), "Image with identifier %s not found" % missing in str(e))
    try:
        list(c.images.list(marker="not-a-uuid"))
        ck.true("list bad marker: HTTPBadRequest", False)
    except exc.HTTPBadRequest as e:
        ck.true("list bad marker: message %r" % str(e), "Invalid marker format" in str(e))

    if ck.failed:
        for f in ck.failed:
            print("FAILED %s" % f)
        return 1
    print("glanceclient v1: all checks passed (get, data %d bytes, list %d images)" % (n, len(listed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
