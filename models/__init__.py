"""MongoDB models (mongoengine) and the database connection."""

from __future__ import annotations

import mongoengine
from flask import Flask

_connected: dict[str, str] = {}


def init_db(app: Flask) -> None:
    """Connect mongoengine: MongoDB when MONGODB_URI is set, else in-memory mongomock."""
    uri = app.config["MONGODB_URI"]
    db_name = app.config["MONGODB_DB"]
    key = f"{uri or 'mongomock'}|{db_name}"
    if _connected.get("default") == key:
        return
    if "default" in _connected:
        mongoengine.disconnect(alias="default")
    if uri:
        mongoengine.connect(host=uri, db=db_name, uuidRepresentation="standard", tz_aware=True)
    else:
        import mongomock
        import mongomock.gridfs

        from models.mongomock_speed import accelerate

        accelerate()  # _id and unique-index lookups by key, as MongoDB's indexes give
        mongomock.gridfs.enable_gridfs_integration()
        mongoengine.connect(
            db_name,
            host="mongodb://localhost",
            mongo_client_class=mongomock.MongoClient,
            uuidRepresentation="standard",
            tz_aware=True,
        )
    _connected["default"] = key
    ensure_indexes()


def ensure_indexes() -> None:
    """Create the indexes every model declares in its meta."""
    from models.registry import all_models

    for model in all_models():
        model.ensure_indexes()
