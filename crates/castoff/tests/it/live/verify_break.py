# Breaks two artifacts of a dist/ the way real releases break, for live::verify, and records
# the new files in manifest.json and SHA256SUMS so `castoff publish` takes them as they are:
#
#   - the wheel's entry script loses its executable bit (the zip entry's Unix mode 0644);
#   - the npm launcher's optionalDependencies lose the host's platform package (argv[2]).
#
# usage: python3 verify_break.py DIST PLATFORM_PACKAGE
import base64
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import zipfile

dist, dropped = sys.argv[1], sys.argv[2]


def wheel_without_executable_scripts(data):
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            if ".data/scripts/" in info.filename:
                info.external_attr = 0o100644 << 16
            target.writestr(info, content)
    return out.getvalue()


def launcher_without(data, package):
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as source:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as target:
            for member in source.getmembers():
                content = source.extractfile(member).read() if member.isfile() else None
                if member.name == "package/package.json":
                    manifest = json.loads(content)
                    del manifest["optionalDependencies"][package]
                    content = (json.dumps(manifest, indent=2) + "\n").encode()
                    member.size = len(content)
                target.addfile(member, io.BytesIO(content) if content is not None else None)
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as zipped:
        zipped.write(raw.getvalue())
    return out.getvalue()


manifest_path = os.path.join(dist, "manifest.json")
with open(manifest_path) as file:
    manifest = json.load(file)
rewritten = {}
for artifact in manifest["artifacts"]:
    path = artifact.get("path")
    if artifact["kind"] not in ("wheel", "npm-launcher") or not path:
        continue
    full = os.path.join(dist, path)
    with open(full, "rb") as file:
        data = file.read()
    if artifact["kind"] == "wheel":
        data = wheel_without_executable_scripts(data)
    else:
        data = launcher_without(data, dropped)
        artifact["digest"] = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    with open(full, "wb") as file:
        file.write(data)
    artifact["size"] = len(data)
    artifact["sha256"] = hashlib.sha256(data).hexdigest()
    rewritten[path] = artifact["sha256"]
assert len(rewritten) == 2, rewritten

with open(manifest_path, "w") as file:
    json.dump(manifest, file, indent=2)
    file.write("\n")
sums_path = os.path.join(dist, "SHA256SUMS")
with open(sums_path) as file:
    lines = file.read().splitlines()
with open(sums_path, "w") as file:
    for line in lines:
        digest, path = line.split("  ", 1)
        file.write(f"{rewritten.get(path, digest)}  {path}\n")
