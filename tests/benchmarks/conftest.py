"""Fixtures of the benchmark harness tests."""

import functools
import http.server
import threading

import pytest

from sr_models.datasets import get_dataset
from sr_models.imageio import write_png


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(folder, base URL) of a local HTTP server; files put in the folder are served."""
    folder = tmp_path_factory.mktemp("served")
    handler = functools.partial(QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def wing_set(embedded_datasets, tmp_path):
    """A plain folder "tiny" with one small HR image, wing.png (LR made with imresize)."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    _, hr = get_dataset("Set5", embedded_datasets).load("img_003")
    write_png(folder / "wing.png", hr[64:128, 96:176])
    return folder


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
