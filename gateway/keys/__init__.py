"""The key store: typed key records in files, private material sealed under a master key."""

from gateway.keys.store import (
    KeyPurpose,
    KeyRecord,
    KeyStore,
    KeyStoreError,
    MasterKey,
    load_master_key,
)

__all__ = ["KeyPurpose", "KeyRecord", "KeyStore", "KeyStoreError", "MasterKey", "load_master_key"]
