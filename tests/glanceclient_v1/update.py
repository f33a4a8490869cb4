#!/usr/bin/env python3
"""python-glanceclient's Glance v1 code (the `glance --os-image-api-version 1`
CLI and the glanceclient.v1 Python API) updating images and sharing them
through nova-images-proxy's image listener; after each step the image (and
its members) are read through Glance v2 and must be what v1 said.

Usage (tests/glance_v1_update.rs runs it with the python of
scripts/glanceclient-v1.sh):
  update.py --url http://127.0.0.1:PORT --v2-url URL --token TOKEN --member PROJECT
"""

import argparse
import hashlib
import json
import os
import urllib.request
import sys
import uuid

from glanceclient.v1 import client as v1client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check import Checks  # noqa: E402
from write import cli, table, v2_image  # noqa: E402


def v2_members(a, image_id):
    req = urllib.request.Request("%s/v2/images/%s/members" % (a.v2_url, image_id),
                                 headers={"X-Auth-Token": a.token})
    with urllib.request.urlopen(req) as r:
        return sorted(m["member_id"] for m in json.loads(r.read())["members"])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--v2-url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--member", required=True)
    a = p.parse_args()
    ck = Checks()
    run = uuid.uuid4().hex[:8]

    # A queued image (CLI image-create without data), then CLI image-update.
    out = table(cli(a, "image-create", "--name", "gc upd " + run, "--property", "a=1", "--property", "b=2"))
    image_id = out.get("id")
    ck.eq("cli create: queued", out.get("status"), "queued")
    out = table(cli(a, "image-update", "--name", "gc renamed " + run, "--min-disk", "2",
                    "--property", "a=10", "--property", "c=3", image_id))
    ck.eq("cli update: name", out.get("name"), "gc renamed " + run)
    ck.eq("cli update: kept b", out.get("Property 'b'"), "2")
    ck.eq("cli update: a", out.get("Property 'a'"), "10")
    v2 = v2_image(a, image_id)[1] or {}
    ck.eq("v2 after cli update: name", v2.get("name"), "gc renamed " + run)
    ck.eq("v2 after cli update: min_disk", v2.get("min_disk"), 2)
    ck.eq("v2 after cli update: properties", (v2.get("a"), v2.get("b"), v2.get("c")), ("10", "2", "3"))
    out = table(cli(a, "image-update", "--purge-props", "--property", "d=4", image_id))
    ck.eq("cli update --purge-props: b gone", out.get("Property 'b'"), None)
    v2 = v2_image(a, image_id)[1] or {}
    ck.eq("v2 after purge", (v2.get("a"), v2.get("b"), v2.get("c"), v2.get("d")), (None, None, None, "4"))

    # CLI image-update --file into the queued image (formats set with it).
    data = os.urandom(64 * 1024 + 3)
    md5 = hashlib.md5(data).hexdigest()
    src = os.path.join(os.environ.get("TMPDIR", "/tmp"), "nip-upd-%s.img" % run)
    with open(src, "wb") as f:
        f.write(data)
    try:
        out = table(cli(a, "image-update", "--disk-format", "raw", "--container-format", "bare",
                        "--file", src, image_id))
    finally:
        os.unlink(src)
    ck.eq("cli update --file: active", out.get("status"), "active")
    ck.eq("cli update --file: checksum", out.get("checksum"), md5)
    ck.eq("cli update --file: kept d", out.get("Property 'd'"), "4")
    v2 = v2_image(a, image_id)[1] or {}
    ck.eq("v2 after upload", (v2.get("status"), v2.get("checksum"), v2.get("size")), ("active", md5, len(data)))

    # Members: CLI member-create, member-list (by image, by tenant), member-delete.
    cli(a, "member-create", image_id, a.member)
    rows = cli(a, "member-list", "--image-id", image_id)
    ck.eq("cli member-list: the member", a.member in rows and image_id in rows, True)
    ck.eq("v2 members after member-create", v2_members(a, image_id), [a.member])
    # Another project's memberships are listed of the caller's own images (v1's registry);
    # a Glance without Keystone makes images without an owner.
    rows = cli(a, "member-list", "--tenant-id", a.member)
    owned = (v2_image(a, image_id)[1] or {}).get("owner") is not None
    ck.eq("cli member-list --tenant-id: the image if owned", image_id in rows, owned)
    cli(a, "member-delete", image_id, a.member)
    ck.eq("v2 members after member-delete", v2_members(a, image_id), [])

    # Python API: update, members replace/list/delete.
    c = v1client.Client(endpoint=a.url, token=a.token)
    img = c.images.update(image_id, name="api " + run, properties={"e": "5"}, purge_props=False)
    ck.eq("api update: properties", img.properties, {"d": "4", "e": "5"})
    c.image_members.replace(image_id, [{"member_id": a.member}, {"member_id": "p-" + run}])
    ck.eq("v2 members after api replace", v2_members(a, image_id), sorted([a.member, "p-" + run]))
    listed = sorted(m.member_id for m in c.image_members.list(image=image_id))
    ck.eq("api members list", listed, sorted([a.member, "p-" + run]))
    c.image_members.delete(image_id, "p-" + run)
    ck.eq("v2 members after api delete", v2_members(a, image_id), [a.member])
    got = b"".join(c.images.data(image_id))
    ck.eq("api data after update: md5", hashlib.md5(got).hexdigest(), md5)
    c.images.delete(image_id)
    ck.eq("v2 after delete", v2_image(a, image_id)[0], 404)

    ck.report("glanceclient v1 updates")


if __name__ == "__main__":
    main()
