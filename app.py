"""What Toolforge's uWSGI (``~/www/python/src/app.py``) and gunicorn (``app:app``) load."""

from template_tool import create_app

app = create_app()
