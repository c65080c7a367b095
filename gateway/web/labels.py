"""Names of the API's codes that more than one page shows (translated when shown)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

#: A signal's status.
SIGNAL_STATUS_NAMES = {
    "active": _l("active"),
    "withdrawn": _l("withdrawn"),
    "expired": _l("expired"),
}
#: A signal's category, as a table cell shows it.
CATEGORY_NAMES = {
    "possible-victim": _l("possible victim"),
    "possible-perpetrator": _l("possible perpetrator"),
    "concern": _l("concern"),
}
