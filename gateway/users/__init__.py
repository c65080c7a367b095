"""People at the meldpunt: coordinators, privacy officers and administrators.

They will sign in to the web UI with a password (argon2id) and a TOTP code; today the
administrator creates them with `ketenpoort users add`.
"""
