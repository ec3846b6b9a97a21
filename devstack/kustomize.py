"""A real `kustomize` binary, built once from source with the machine's Go into the cache dir,
and `render()` to turn a kustomization (deploy/k8s/...) into the objects it would apply.

No Docker and no release download: the Go module proxy is all this needs. The binary lands in
`<cache>/kustomize-<version>/kustomize` and is reused as long as it is there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .stack import cache_dir as default_cache_dir
from .system import MissingToolError

#: v5.6.0: the newest release tried here whose dependencies resolve and build with Go 1.26.
KUSTOMIZE_VERSION = "v5.6.0"
_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
#: Where the Go tarball installs itself when it is not on PATH (as on the CI machines).
_GO_FALLBACK = Path("/usr/local/go/bin/go")


class KustomizeError(RuntimeError):
    """Building the kustomize binary or running `kustomize build` failed."""


def find_go() -> Path:
    """The `go` command: $GO, then PATH, then /usr/local/go/bin/go."""
    candidates = [os.environ.get("GO"), shutil.which("go"), str(_GO_FALLBACK)]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise MissingToolError(
        "Go is needed to build kustomize but was not found (looked at $GO, PATH and "
        f"{_GO_FALLBACK}); install Go >= 1.22.7 from https://go.dev/dl/ and run again"
    )


def ensure_kustomize(cache_dir: Path | None = None, version: str = KUSTOMIZE_VERSION) -> Path:
    """Return the path of a kustomize `version` binary, building it into `cache_dir` if absent.

    Building takes about half a minute on a cold Go module cache and prints nothing unless it
    fails; concurrent callers may both build, the last rename wins and both get a whole file.
    """
    if cache_dir is None:
        cache_dir = default_cache_dir()
    target = (cache_dir / f"kustomize-{version}" / "kustomize").resolve()
    if target.is_file() and os.access(target, os.X_OK):
        return target
    go = find_go()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=target.parent) as gobin:
        env = {
            **os.environ,
            "GOBIN": gobin,
            # Never fetch another toolchain behind our back: a too-old Go should fail loudly.
            "GOTOOLCHAIN": "local",
        }
        # The release binaries get their version stamped the same way; without it
        # `kustomize version` says "(devel)".
        ldflags = f"-X sigs.k8s.io/kustomize/api/provenance.version={version}"
        result = subprocess.run(
            [str(go), "install", "-ldflags", ldflags, f"{_MODULE}@{version}"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        built = Path(gobin) / "kustomize"
        if result.returncode != 0 or not built.is_file():
            raise KustomizeError(
                f"`go install {_MODULE}@{version}` failed (exit {result.returncode}):\n"
                + _tail(result.stderr)
            )
        os.replace(built, target)
    return target


def render(path: Path | str, *, kustomize: Path | None = None) -> list[dict[str, Any]]:
    """`kustomize build path`, parsed: one dict per object, in kustomize's output order."""
    binary = kustomize or ensure_kustomize()
    result = subprocess.run(
        [str(binary), "build", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise KustomizeError(f"kustomize build {path} failed:\n{_tail(result.stderr)}")
    objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]
    for doc in objects:
        if not isinstance(doc, dict):
            raise KustomizeError(f"kustomize build {path} produced a non-object: {doc!r}")
    return objects


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:]) or "(no output)"


def main(argv: list[str] | None = None) -> int:
    """`python -m devstack.kustomize [build PATH]`: print the binary's path, or build PATH."""
    args = sys.argv[1:] if argv is None else argv
    binary = ensure_kustomize()
    if args[:1] == ["build"] and len(args) == 2:
        return subprocess.run([str(binary), "build", args[1]], check=False).returncode
    print(binary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
