"""The data's lifecycle: retention and erasure (with crypto-shredding), backup and restore."""
