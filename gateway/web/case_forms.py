"""The forms of the case pages. Each carries a CSRF token (checked for every unsafe
request of the blueprint); the services check the values, so these only read them.
Labels and messages are in the templates, translated with the page."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, SelectMultipleField, StringField, TextAreaField

_IDS = re.compile(r"[\s,;]+")


def split_ids(text: str | None) -> tuple[str, ...]:
    """Signal ids typed one per line, or separated by spaces, commas or semicolons."""
    return tuple(dict.fromkeys(part for part in _IDS.split(text or "") if part))


def optional(text: str | None) -> str | None:
    """An empty field is no value."""
    return text if text else None


class NewCaseForm(FlaskForm):
    """A case from a match (`match_id`) or from signal ids typed on /cases."""

    title = StringField()
    match_id = HiddenField()
    signal_ids = TextAreaField()


class LinkForm(FlaskForm):
    """One signal by id (the case page), or a match's signals the case lacks (`match_id`,
    the match page)."""

    signal_id = StringField()
    reason = StringField()
    match_id = HiddenField()


class UnlinkForm(FlaskForm):
    reason = StringField()


class StatusForm(FlaskForm):
    status = SelectField(validate_choice=False)
    outcome = StringField()


class AssignForm(FlaskForm):
    assignee = SelectField(validate_choice=False)


class NoteForm(FlaskForm):
    text = TextAreaField()


class ShareForm(FlaskForm):
    signal_ids = SelectMultipleField(validate_choice=False)
    organisations = SelectMultipleField(validate_choice=False)
    purpose = SelectField(validate_choice=False)
