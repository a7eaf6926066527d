"""gunicorn settings for the benchmark (passed with ``--config`` so that the repository's own
``gunicorn.conf.py``, which logs every request to stdout, stays out of the measurement)."""

accesslog = None
loglevel = "warning"
backlog = 2048
keepalive = 5
