"""Benchmarks: what a login costs per request, per login, per refresh and per session.

``python -m bench`` (``make bench``) starts a private redis-server, the development wiki and
gunicorn serving :mod:`bench.app` on loopback, drives them with wrk, and prints one table.
``python -m bench --smoke`` (``make bench-smoke``) is the same harness in under a minute, with
no thresholds: it fails only if something is broken. See docs/performance.md.
"""
