"""A real JupyterLab (``jupyter lab``) or classic Notebook 7 (``jupyter notebook``)
server on loopback for browser tests: in a subprocess with a token, a root directory
of the test's own, this test's Redis and namespace in its kernels' environment;
notebooks are written as .ipynb files."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import nbformat

from aiflow_nb.api.server import free_port

from . import PYTHONPATH
from .processes import terminate

__all__ = ["JupyterLab", "jupyter_lab", "jupyter_notebook", "write_notebook"]


@dataclass(frozen=True)
class JupyterLab:
    url: str
    token: str
    root: Path
    classic: bool = False
    """A Notebook 7 server: notebooks open at ``/notebooks/NAME``."""

    def notebook_url(self, name: str) -> str:
        if self.classic:
            return f"{self.url}notebooks/{name}?token={self.token}"
        return f"{self.url}lab/tree/{name}?token={self.token}&reset"


def write_notebook(root: Path, name: str, cells: list[str]) -> str:
    """``root/name`` as a notebook of code ``cells`` (no outputs); its name."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(root / name))
    return name


def jupyter_lab(root: Path) -> contextlib.AbstractContextManager[JupyterLab]:
    """``jupyter lab`` serving ``root`` on 127.0.0.1 (its app exposed as
    ``window.jupyterapp``, so a test runs cells through Lab's own commands)."""
    return _jupyter(root, classic=False)


def jupyter_notebook(root: Path) -> contextlib.AbstractContextManager[JupyterLab]:
    """``jupyter notebook`` (Notebook 7, the classic notebook's page) serving ``root``
    on 127.0.0.1, its app exposed as ``window.jupyterapp`` as Lab's is."""
    return _jupyter(root, classic=True)


@contextmanager
def _jupyter(root: Path, classic: bool) -> Iterator[JupyterLab]:
    app = "JupyterNotebookApp" if classic else "LabApp"
    exe = Path(sys.executable).with_name("jupyter-notebook" if classic else "jupyter-lab")
    port, token = free_port(), secrets.token_hex(16)
    home = root / ".jupyter-home"
    home.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": PYTHONPATH,
        "AIFLOW_LOCAL_WORKER": "0",
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
    }
    log = (root / ".jupyter.log").open("wb")
    proc = subprocess.Popen(
        [
            str(exe),
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--{app}.expose_app_in_browser=True",
            *([] if classic else ["--LabApp.news_url="]),
            "--LabServerApp.extra_labextensions_path=[]",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}api/status?token={token}", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{exe.name} did not start: {(root / '.jupyter.log').read_text()}"
                )
            time.sleep(0.3)
        yield JupyterLab(url, token, root, classic)
    finally:
        terminate(proc, 15)
        log.close()
