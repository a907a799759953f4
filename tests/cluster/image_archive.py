"""Write a container image made of a few static files as an image archive that ``ctr images import`` reads.

Why this exists: the real test node (real_node.py) needs a pause image for its pods' sandboxes, and its smoke tests
an image to run, but no registry can be reached and no image builder is needed for one static binary. The archive
is in the format ``docker save`` writes (``manifest.json`` naming the config, the layers and the image's tag), which
containerd imports with the tag as the image's name. Everything in it is deterministic (fixed timestamps, root
ownership, sorted entries), so the same inputs give the same image digest.

Standard library only: ``tests/cluster/build.sh`` runs it with the system's python3, before any virtualenv exists.

    python3 tests/cluster/image_archive.py --name localhost/venta-test/pause:<tag> --out pause.tar \\
        --entrypoint /pause <path of the binary>:/pause
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path


def layer_tar(files: Mapping[str, Path]) -> bytes:
    """An uncompressed layer holding ``files`` (path in the image -> file on the host), executable, owned by root."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for image_path in sorted(files):
            data = files[image_path].read_bytes()
            info = tarfile.TarInfo(image_path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def image_archive(
    name: str, files: Mapping[str, Path], *, entrypoint: Sequence[str], user: str = ""
) -> dict[str, bytes]:
    """The members of a ``docker save`` style archive for one single-layer image, by member name."""
    layer = layer_tar(files)
    layer_digest = hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": list(entrypoint), "Env": ["PATH=/"], "User": user, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "tests/cluster/image_archive.py"}],
    }
    config_json = json.dumps(config, sort_keys=True).encode()
    config_name = f"{hashlib.sha256(config_json).hexdigest()}.json"
    manifest = [{"Config": config_name, "RepoTags": [name], "Layers": [f"{layer_digest}/layer.tar"]}]
    return {
        config_name: config_json,
        f"{layer_digest}/layer.tar": layer,
        "manifest.json": json.dumps(manifest).encode(),
    }


def write_image_archive(
    out: Path, name: str, files: Mapping[str, Path], *, entrypoint: Sequence[str], user: str = ""
) -> Path:
    """Write the archive of :func:`image_archive` to ``out`` (replacing it) and return ``out``."""
    members = image_archive(name, files, entrypoint=entrypoint, user=user)
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    partial.replace(out)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="image name with tag, e.g. localhost/venta-test/pause:1")
    parser.add_argument("--out", required=True, type=Path, help="archive to write")
    parser.add_argument("--entrypoint", required=True, help="path of the program to run, in the image")
    parser.add_argument("--user", default="", help="user to run as (e.g. 65534), default root")
    parser.add_argument("files", nargs="+", help="HOST_PATH:IMAGE_PATH of each file")
    args = parser.parse_args(argv)
    files = {image: Path(host) for host, _, image in (spec.rpartition(":") for spec in args.files)}
    write_image_archive(args.out, args.name, files, entrypoint=[args.entrypoint], user=args.user)


if __name__ == "__main__":
    main()
