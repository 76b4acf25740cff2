"""Example FastAPI host: CRUD for users, teams, projects and tasks over sqlmosaic.

Run it with ``scripts/run`` (installs, migrates ./mosaic.db, serves on 127.0.0.1:$PORT), or by
hand after ``mosaic db upgrade``::

    python -m examples.fastapi_app                       # logging configured, PORT / HOST env
    uvicorn --factory examples.fastapi_app:create_app    # plain uvicorn
"""

from .app import create_app

__all__ = ["create_app"]
