"""WSGI entry point for gunicorn: `gunicorn 'gateway.wsgi:create()'`."""

from __future__ import annotations

from flask import Flask

from gateway.app import create_app


def create() -> Flask:
    return create_app()
