from tests.signals.factory import database

__all__ = ["database"]
