"""Server-rendered pages (no external scripts, fonts or CDNs: everything works offline)."""
