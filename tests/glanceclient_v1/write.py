#!/usr/bin/env python3
"""python-glanceclient's Glance v1 code (the `glance --os-image-api-version 1`
CLI and the glanceclient.v1 Python API) writing through nova-images-proxy's
image listener; after each step the image is read through Glance v2 and must
be what v1 said.

Usage (tests/glance_v1_write.rs runs it with the python of
scripts/glanceclient-v1.sh):
  write.py --url http://127.0.0.1:PORT --v2-url URL --token TOKEN
"""

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid

from glanceclient import exc
from glanceclient.v1 import client as v1client


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check import Checks  # noqa: E402


def v2_image(a, image_id):
    req = urllib.request.Request("%s/v2/images/%s" % (a.v2_url, image_id),
                                 headers={"X-Auth-Token": a.token})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None


def cli(a, *args):
    glance = os.path.join(os.path.dirname(sys.executable), "glance")
    cmd = [glance, "--os-image-api-version", "1", "--os-image-url", a.url,
           "--os-auth-token", a.token] + list(args)
    # Standard input closed (as `glance … <&-`): glanceclient takes an open one as image data.
    p = subprocess.run(cmd, capture_output=True, text=True, stdin=None, preexec_fn=lambda: os.close(0))
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s%s" % (" ".join(args[:1]), p.returncode, p.stdout, p.stderr))
    return p.stdout


def table(out):
    """The Property/Value table glanceclient prints, as a dict."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and line.startswith("|"):
            rows[cells[0]] = cells[1]
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--v2-url", required=True)
    p.add_argument("--token", required=True)
    a = p.parse_args()
    ck = Checks()
    run = uuid.uuid4().hex[:8]
    data = os.urandom(200 * 1024 + 17)
    md5 = hashlib.md5(data).hexdigest()

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in.img")
        with open(src, "wb") as f:
            f.write(data)

        # CLI image-create --file with properties.
        out = table(cli(a, "image-create", "--name", "gc v1 " + run, "--disk-format", "raw",
                        "--container-format", "bare", "--min-ram", "32", "--file", src,
                        "--property", "os_distro=cirros", "--property", "nip_run=" + run))
        image_id = out.get("id")
        ck.eq("cli create: status", out.get("status"), "active")
        ck.eq("cli create: checksum", out.get("checksum"), md5)
        ck.eq("cli create: size", out.get("size"), str(len(data)))
        ck.eq("cli create: property os_distro", out.get("Property 'os_distro'"), "cirros")
        status, v2 = v2_image(a, image_id)
        ck.eq("v2 after cli create: found", status, 200)
        v2 = v2 or {}
        ck.eq("v2 after cli create: status", v2.get("status"), "active")
        ck.eq("v2 after cli create: name", v2.get("name"), "gc v1 " + run)
        ck.eq("v2 after cli create: checksum", v2.get("checksum"), md5)
        ck.eq("v2 after cli create: size", v2.get("size"), len(data))
        ck.eq("v2 after cli create: min_ram", v2.get("min_ram"), 32)
        ck.eq("v2 after cli create: os_distro", v2.get("os_distro"), "cirros")
        ck.eq("v2 after cli create: nip_run", v2.get("nip_run"), run)

        # CLI image-download (glanceclient checks the MD5 against the checksum).
        dst = os.path.join(tmp, "out.img")
        cli(a, "image-download", "--file", dst, image_id)
        with open(dst, "rb") as f:
            ck.eq("cli download: md5", hashlib.md5(f.read()).hexdigest(), md5)

        # CLI image-delete.
        cli(a, "image-delete", image_id)
        ck.eq("v2 after cli delete", v2_image(a, image_id)[0], 404)

    # Python API: create with data and properties, get, a size mismatch, delete.
    c = v1client.Client(endpoint=a.url, token=a.token)
    img = c.images.create(name="api v1 " + run, disk_format="raw", container_format="bare",
                          data=io.BytesIO(data), properties={"nip_run": run, "hw_disk_bus": "scsi"})
    ck.eq("api create: status", img.status, "active")
    ck.eq("api create: checksum", img.checksum, md5)
    ck.eq("api create: properties", img.properties, {"nip_run": run, "hw_disk_bus": "scsi"})
    got = c.images.get(img.id)
    ck.eq("api get: size", got.size, len(data))
    status, v2 = v2_image(a, img.id)
    v2 = v2 or {}
    ck.eq("v2 after api create: disk_format", v2.get("disk_format"), "raw")
    ck.eq("v2 after api create: hw_disk_bus", v2.get("hw_disk_bus"), "scsi")
    ck.eq("api data: md5", hashlib.md5(b"".join(c.images.data(img.id))).hexdigest(), md5)
    bad_id = str(uuid.uuid4())
    try:
        c.images.create(id=bad_id, name="bad " + run, disk_format="raw", container_format="bare",
                        size=len(data) + 1, data=io.BytesIO(data))
        ck.failed.append("api create with a wrong size: no error")
    except exc.HTTPBadRequest as e:
        ck.eq("api wrong size: message has v1's words", "did not match" in str(e), True)
    ck.eq("v2 after a wrong size", v2_image(a, bad_id)[0], 404)
    c.images.delete(img.id)
    ck.eq("v2 after api delete", v2_image(a, img.id)[0], 404)
    try:
        c.images.delete(img.id)
        ck.failed.append("api delete twice: no error")
    except exc.HTTPNotFound:
        pass

    ck.report("glanceclient v1 writes")


if __name__ == "__main__":
    main()
