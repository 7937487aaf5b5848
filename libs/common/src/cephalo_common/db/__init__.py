"""PostgreSQL through SQLAlchemy 2 async: base models, engine, unit of work, outbox, inbox."""
