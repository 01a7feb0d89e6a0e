"""Drives huggingface_hub against HF_ENDPOINT (the mirror) and prints one JSON object with what it got.

usage: hf_client.py suite [--gated TOKEN]   hf_hub_download, snapshot_download (model, dataset), errors
       hf_client.py fetch REPO FILE         one hf_hub_download
Files are reported by sha256 so the caller can compare them with the fake hub's content.
"""
import hashlib
import json
import os
import sys
import time

import huggingface_hub as hub
from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.utils._runtime import is_xet_available


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree(root):
    out = {}
    for base, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(base, name)
            out[os.path.relpath(full, root).replace(os.sep, "/")] = sha256(full)
    return out


def error_name(fn):
    try:
        fn()
    except Exception as e:  # the class name is what the test checks
        return type(e).__name__
    return None


def suite(argv):
    result = {"version": hub.__version__, "endpoint": hub.constants.ENDPOINT, "xet_available": is_xet_available()}
    result["config"] = sha256(hf_hub_download("acme/tiny", "config.json"))
    result["weights"] = sha256(hf_hub_download("acme/tiny", "weights.bin"))
    result["model"] = tree(snapshot_download("acme/tiny"))
    result["dataset"] = tree(snapshot_download("acme/tinyds", repo_type="dataset"))
    result["missing"] = error_name(lambda: hf_hub_download("acme/tiny", "nope.txt"))
    if "--gated" in argv:
        token = argv[argv.index("--gated") + 1]
        result["gated_anon"] = error_name(lambda: hf_hub_download("acme/gated", "weights.bin", token=False))
        result["gated_token"] = sha256(hf_hub_download("acme/gated", "weights.bin", token=token))
        # Hub calls beyond files and repository info (login checks, search) go through the mirror too.
        result["whoami"] = hub.HfApi().whoami(token=token)["name"]
        result["whoami_bad"] = error_name(lambda: hub.HfApi().whoami(token="hf_wrong"))
        result["models"] = sorted(m.id for m in hub.list_models(author="acme", token=False))
    return result


def fetch(argv):
    repo, filename = argv[0], argv[1]
    started, cpu = time.monotonic(), time.process_time()
    path = hf_hub_download(repo, filename)
    seconds, cpu_seconds = time.monotonic() - started, time.process_time() - cpu
    return {"version": hub.__version__, "sha256": sha256(path), "size": os.path.getsize(path), "seconds": seconds, "cpu_seconds": cpu_seconds}


if __name__ == "__main__":
    command, rest = sys.argv[1], sys.argv[2:]
    print(json.dumps(suite(rest) if command == "suite" else fetch(rest)))
