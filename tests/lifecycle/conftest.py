from tests.cases.conftest import headers, world

__all__ = ["headers", "world"]
