"""`python -m ops_dashboard.vendor_charts`: put Apache ECharts from the npm registry into
`static/vendor/`, checked against the registry's sha512 integrity. Run it when changing the
version; its output is committed, so the page needs no network and no build step at run time."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

PACKAGE = "echarts"
VERSION = "5.6.0"
REGISTRY = "https://registry.npmjs.org"
#: What the page needs from the package, and the name it gets under static/vendor/.
FILES = {
    "package/dist/echarts.min.js": "echarts.min.js",
    "package/LICENSE": "echarts.LICENSE.txt",
}
VENDOR = Path(__file__).resolve().parent / "static" / "vendor"


def fetch(url: str) -> bytes:
    """GET `url` (registry metadata or tarball)."""
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def vendor(version: str = VERSION, target: Path = VENDOR) -> list[Path]:
    """Download, verify and extract; return the files written."""
    meta = json.loads(fetch(f"{REGISTRY}/{PACKAGE}/{version}"))
    tarball = fetch(meta["dist"]["tarball"])
    algorithm, _, expected = meta["dist"]["integrity"].partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode()
    if digest != expected:
        raise SystemExit(f"{PACKAGE} {version}: tarball does not match the registry's integrity")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for member, name in FILES.items():
            data = archive.extractfile(member)
            if data is None:
                raise SystemExit(f"{PACKAGE} {version}: {member} missing from the tarball")
            path = target / name
            path.write_bytes(data.read())
            written.append(path)
    (target / "VERSIONS.txt").write_text(f"{PACKAGE} {version} ({meta['dist']['integrity']})\n")
    return written


if __name__ == "__main__":
    for path in vendor(sys.argv[1] if len(sys.argv) > 1 else VERSION):
        print(f"wrote {path}")
