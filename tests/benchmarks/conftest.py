"""Fixtures of the benchmark harness tests."""

import functools
import http.server
import threading

import pytest


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


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
