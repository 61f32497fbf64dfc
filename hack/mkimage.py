#!/usr/bin/env python3
"""Writes a one-layer docker-archive image from host files, without a container engine.

Used for the pod sandbox ("pause") image of the local cluster. The archive is reproducible
(fixed mtimes and ordering), so its image ID only changes when the files change.

    mkimage.py --tag localhost/gencluster-pause:1.0 --out pause.tar \
        --file /path/to/pause:/pause:0755 --entrypoint /pause
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tag", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--file", action="append", default=[], help="SRC:DEST[:MODE]")
    ap.add_argument("--entrypoint", action="append", default=[])
    ap.add_argument("--user", default="65535:65535")
    args = ap.parse_args()

    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for spec in sorted(args.file):
            src, dest, *mode = spec.split(":")
            with open(src, "rb") as f:
                data = f.read()
            info = tarfile.TarInfo(dest.lstrip("/"))
            info.size, info.mtime, info.mode = len(data), 0, int(mode[0], 8) if mode else 0o644
            tar.addfile(info, io.BytesIO(data))
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()

    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": args.entrypoint, "User": args.user, "Env": ["PATH=/"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "hack/mkimage.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_digest = hashlib.sha256(config_bytes).hexdigest()
    layer_name = diff_id.split(":")[1] + "/layer.tar"
    manifest = [{"Config": config_digest + ".json", "RepoTags": [args.tag], "Layers": [layer_name]}]

    with tarfile.open(args.out, "w") as out:
        for name, data in (
            (config_digest + ".json", config_bytes),
            (layer_name, layer_bytes),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            out.addfile(info, io.BytesIO(data))
    print("sha256:" + config_digest)


if __name__ == "__main__":
    main()
