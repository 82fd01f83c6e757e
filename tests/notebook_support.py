"""Run a notebook with papermill into a temporary folder and model store, as the notebook tests do."""

from pathlib import Path

import papermill

from app.paths import PROJECT_ROOT


def run_notebook(name: str, parameters: dict, tmp_path_factory) -> tuple[Path, Path]:
    """Execute notebooks/<name>.ipynb once; returns the executed notebook and the store it wrote."""
    folder = tmp_path_factory.mktemp(f"{name}-notebook")
    output = folder / f"{name}.out.ipynb"
    papermill.execute_notebook(
        PROJECT_ROOT / "notebooks" / f"{name}.ipynb",
        output,
        parameters={**parameters, "models_dir": str(folder / "models")},
        kernel_name="python3",
        cwd=str(PROJECT_ROOT),
        progress_bar=False,
    )
    return output, folder / "models"
