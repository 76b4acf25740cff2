"""Example Starlette host: users, projects and tasks (create / read / list) over sqlmosaic.

Run it after ``mosaic db upgrade`` (or ``scripts/run`` once)::

    uvicorn --factory examples.starlette_app:create_app --port 8001
"""

from .app import create_app

__all__ = ["create_app"]
