"""Hugging Face Hub ids wherever t2i takes a model folder: `org/name` or `org/name@revision`.

    local_folder("runs/ae/vae")                 -> the folder itself, when it exists
    local_folder("stabilityai/sd-vae-ft-mse")   -> its snapshot in the Hugging Face cache (downloaded if online)

What is fetched is weights in safetensors and the small files beside them (configs, tokenizers): never pickled
weights, never code. With HF_HUB_OFFLINE=1 (how t2i's own tests and Makefile run) only the cache is read, and a
model missing from it is one line naming the id and the cache. The folder is then loaded as a local one is.
"""

from __future__ import annotations

import re
from pathlib import Path

HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<revision>[\w./-]+))?$")
FILES = ["*.json", "*.safetensors", "*.txt", "*.yaml", "*.model", "tokenizer*", "merges.txt", "vocab*"]


def local_folder(path_or_id: str | Path) -> Path:
    """A folder that exists, as it is; otherwise a Hub id, resolved to its snapshot in the cache."""
    path = Path(path_or_id)
    if path.exists() or not HUB_ID.match(str(path_or_id)):
        return path  # a local path (the loader names it if it is missing or incomplete)
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    match = HUB_ID.match(str(path_or_id))
    repo, revision = match["repo"], match["revision"]
    try:
        return Path(huggingface_hub.snapshot_download(repo, revision=revision, allow_patterns=FILES))
    except LocalEntryNotFoundError:
        cache = huggingface_hub.constants.HF_HUB_CACHE
        offline = " and HF_HUB_OFFLINE=1 is set" if huggingface_hub.constants.HF_HUB_OFFLINE else ""
        raise FileNotFoundError(
            f"{path_or_id}: no such local folder, and the Hub model {repo}{'@' + revision if revision else ''} is "
            f"not in the Hugging Face cache ({cache}){offline}: download it once where the Hub is reachable "
            f"(`hf download {repo}`), or give a local folder"
        ) from None
    except (HfHubHTTPError, ValueError) as error:  # not found, gated, a bad revision
        raise FileNotFoundError(f"{path_or_id}: no such local folder, and the Hub says: {error}") from None
