"""The kinds of partner organisation (a module of its own: the CLI's help lists them)."""

KINDS = ("police", "justice", "care", "education", "municipality", "meldpunt")
