"""A config file's YAML, read safely: what `t2i.config.load_config` parses and `t2i.families` reads a family from."""

from __future__ import annotations

from pathlib import Path

import yaml

MAX_CONFIG_BYTES = 1_000_000
MAX_CONFIG_DEPTH = 20


class ConfigLoader(yaml.SafeLoader):
    """YAML as configs take it: no aliases (a few hundred bytes of them expand to gigabytes), no duplicate keys
    (the last one would win without a word), at most MAX_CONFIG_DEPTH levels deep."""

    depth = 0

    def compose_node(self, parent, index):
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not taken in a config", mark)
        if self.depth >= MAX_CONFIG_DEPTH:
            raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_CONFIG_DEPTH} levels", mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key if isinstance(key, str) else id(key_node))
        return super().construct_mapping(node, deep)


def read_config_yaml(path: str | Path):
    """The values of a YAML config file; a missing, oversized, invalid or empty file is a clear error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ValueError(f"{path}: {path.stat().st_size} bytes: a config is at most {MAX_CONFIG_BYTES}")
    try:
        values = yaml.load(path.read_text(encoding="utf-8"), Loader=ConfigLoader)  # noqa: S506 (a SafeLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValueError(f"{path}: not a valid YAML file{where} ({getattr(error, 'problem', None) or error})") from None
    if values is None:
        raise ValueError(f"{path}: the config file is empty (start from configs/tiny.yaml or configs/demo.yaml)")
    return values
