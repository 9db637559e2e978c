"""notebooks/analysis.ipynb is stored clean and runs end to end on fixture results."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
for _p in (str(ROOT), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import fixtures_results as fx  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "analysis.ipynb"
# jupyter_client runs these argv[0] spellings as sys.executable of the launching process.
_SELF_PYTHON = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}


def _kernel_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``python3`` if it runs this interpreter (the venv's), else a temporary kernelspec that does."""
    try:
        argv0 = KernelSpecManager().get_kernel_spec("python3").argv[0]
    except NoSuchKernel:
        argv0 = None
    if argv0 in _SELF_PYTHON or (argv0 and Path(argv0) == Path(sys.executable)):
        return "python3"
    spec_dir = tmp_path / "jupyter" / "kernels" / "itt-test-python"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "itt test python", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "itt-test-python"


def test_notebook_is_stored_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None


def test_notebook_runs_on_fixture_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fx.write_fixture_results(tmp_path / "results")
    figures = tmp_path / "figures"
    monkeypatch.setenv("ITT_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("ITT_FIGURES", str(figures))
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    kernel = _kernel_name(tmp_path, monkeypatch)

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    client = NotebookClient(nb, timeout=120, kernel_name=kernel,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    kernel_python = nb.cells[-1].outputs[0]["text"].strip()
    assert Path(kernel_python) == Path(sys.executable), "the kernel must be this venv's python"

    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 1 + 3  # heatmap + one per cross-lingual target (marc, panx, xnli)
    assert (figures / "gain_heatmap.png").stat().st_size > 1000
    html = "\n".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "0.720 ± 0.020" in html          # paper table
    assert "classification avg" in html     # XTREME-R table
    assert "multilingual" in html           # pretraining comparison
    text = "\n".join(o.get("text", "") for o in outputs)
    assert "30 finished cells, 1 failed, 1 missing" in text
