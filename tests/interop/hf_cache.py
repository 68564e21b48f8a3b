"""Python's huggingface_hub on the same cache as sembed (run by tests/hub.rs, which serves the fake hub).

  hf_cache.py download REPO CACHE   -> snapshot_download from HF_ENDPOINT into CACHE, print the folder
  hf_cache.py offline REPO CACHE F… -> with no network, find REPO's files F… in CACHE, print the folder
"""
import sys

from huggingface_hub import hf_hub_download, snapshot_download

mode, repo, cache, *files = sys.argv[1:]
if mode == "download":
    print(snapshot_download(repo, cache_dir=cache))
elif mode == "offline":
    folder = snapshot_download(repo, cache_dir=cache, local_files_only=True)
    for f in files:
        hf_hub_download(repo, f, cache_dir=cache, local_files_only=True)
    print(folder)
else:
    sys.exit(f"unknown mode {mode}")
