"""docs/walkthrough.ipynb runs top to bottom (at its smallest setting: T2I_NOTEBOOK_SMOKE=1, 30 s here) and shows its
pictures."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parent.parent / "docs" / "walkthrough.ipynb"


def test_the_walkthrough_runs_top_to_bottom_with_its_pictures(tmp_path, monkeypatch):
    monkeypatch.setenv("T2I_NOTEBOOK_SMOKE", "1")
    monkeypatch.setenv("T2I_WORK", str(tmp_path))
    monkeypatch.setenv("T2I_ROOT", str(NOTEBOOK.parent.parent))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pictures) == 7  # the data, reconstructions, loss, samples, the families, the edits, attention
    assert (tmp_path / "diffusion" / "model").is_dir() and (tmp_path / "prior" / "model").is_dir()
