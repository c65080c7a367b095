"""`python -m tests.web.serve`: the gateway under gunicorn on a port the OS hands out
(bind 127.0.0.1:0); gunicorn logs "Listening at: http://127.0.0.1:PORT"."""

from __future__ import annotations

from gateway.config import load_settings
from gateway.server import run_gunicorn

if __name__ == "__main__":
    run_gunicorn(load_settings(), host="127.0.0.1", port=0, workers=2, threads=4)
