"""The README's commands, run as a reader pastes them: every Python block, and the serving block's shell against
a live server (the training blocks take minutes to hours; they are the CLI's own tested commands)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


@pytest.fixture
def reader(tmp_path, monkeypatch):
    """A folder to paste into: the repository's weights/ reachable as in a clone, nothing else."""
    (tmp_path / "weights").symlink_to(ROOT / "weights")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("number", range(len(blocks("python"))))
def test_every_python_block_runs_as_pasted(reader, number):
    exec(compile(blocks("python")[number], f"README.md python block {number + 1}", "exec"), {})


def test_the_serving_block_saves_the_images_it_asks_for(reader, start_server):
    [serving] = [b for b in blocks("bash") if b.startswith("t2i serve")]
    request = serving.split("\n", 1)[1]  # the curl | python3 pipeline below `t2i serve`
    url, port, _ = start_server(ROOT / "weights" / "demo")
    request = request.replace("http://127.0.0.1:7860", url)
    assert shutil.which("curl"), "the README's request uses curl"
    subprocess.run(["bash", "-euo", "pipefail", "-c", request], check=True, cwd=reader, timeout=120)
    assert sorted(p.name for p in reader.glob("seed*.png")) == ["seed7.png", "seed8.png"]


def test_every_t2i_command_in_the_readme_parses(capsys):
    """Each `t2i ...` line of the shell blocks names a real command and real flags (their runs take minutes to
    hours; the commands themselves are tested at the tiny scale beside their modules)."""
    import shlex

    from t2i.cli import build_parser

    commands = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["t2i"]:
                commands.append(words[1 : words.index("|") if "|" in words else None])
    assert len(commands) >= 10
    for words in commands:
        try:
            build_parser().parse_args(words)
        except SystemExit:
            pytest.fail(f"README: `t2i {' '.join(words)}` does not parse: {capsys.readouterr().err}")
