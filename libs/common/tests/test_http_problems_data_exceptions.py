"""PostgreSQL data exceptions (SQLSTATE class 22) are the client's input, answered 422; any
other unexpected error stays a 500."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from cephalo_common.http.problems import install_problem_handlers, is_data_exception


class DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


class WrappedError(Exception):
    """SQLAlchemy's shape: the driver's error in `orig`."""

    def __init__(self, orig: BaseException) -> None:
        super().__init__("wrapped")
        self.orig = orig


def test_class_22_is_recognised_directly_wrapped_and_as_a_cause() -> None:
    assert is_data_exception(DriverError("22021"))
    assert is_data_exception(WrappedError(DriverError("22003")))
    caused = RuntimeError("outer")
    caused.__cause__ = DriverError("22P02")
    assert is_data_exception(caused)
    assert not is_data_exception(DriverError("23505"))
    assert not is_data_exception(RuntimeError("plain"))


async def test_a_nul_byte_the_database_refuses_is_a_422_problem() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/nul")
    async def nul() -> None:
        raise WrappedError(DriverError("22021"))

    @app.get("/bug")
    async def bug() -> None:
        raise WrappedError(DriverError("42P01"))

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        refused = await client.get("/nul")
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        assert (await client.get("/bug")).status_code == 500
