"""Web-framework integrations (optional extras; nothing here is imported by ``sqlmosaic``).

- :mod:`sqlmosaic.integrations.fastapi` (``pip install "sqlmosaic[fastapi]"``): a lifespan that
  starts and stops the host, session / repository / list-query dependencies, and the error
  mapping (``NotFoundError`` -> 404, ``ConflictError`` -> 409, ``InvalidQueryError`` -> 400,
  ``DatabaseUnavailableError`` -> 503 with ``Retry-After``, any other ``MosaicError`` -> 500).
- :mod:`sqlmosaic.integrations.starlette` (``pip install "sqlmosaic[starlette]"``): the same
  lifespan and error mapping for plain Starlette. FastAPI is built on Starlette, so both share
  one implementation.

Plain asyncio needs no integration: ``async with Mosaic() as mosaic: ...``.
"""
