"""Blind submission (RFC 9497 VOPRF): the gateway's public key, blinded evaluations,
and the check of unblinded match keys a partner submits instead of identifiers."""
