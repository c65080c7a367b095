"""A registered client as the authorization server (authlib) sees it.

Its own module so that the server and the client authentication method
(`rfc7523.PrivateKeyJWT`) can both name it without importing each other.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import ClientMixin

from gateway.actors import Actor
from gateway.partners.registry import ClientRecord

AUTH_METHOD = "private_key_jwt"


class ClientModel(ClientMixin):  # type: ignore[misc]
    """A registered client as authlib sees it: private_key_jwt, client_credentials only."""

    def __init__(self, record: ClientRecord) -> None:
        self.record = record
        self.client_id = record.client_id

    def get_client_id(self) -> str:
        return self.record.client_id

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == AUTH_METHOD

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"

    def actor(self) -> Actor:
        return Actor(
            type="client",
            id=self.record.client_id,
            organisation=self.record.organisation,
            organisation_kind=self.record.organisation_kind,
            scopes=self.record.scopes,
        )
