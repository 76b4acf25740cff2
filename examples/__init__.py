"""Example hosts for sqlmosaic: ``fastapi_app``, ``starlette_app`` and ``plain_asyncio.py``."""
