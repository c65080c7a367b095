"""The forms: each carries a CSRF token (Flask-WTF); labels and messages are in the
templates, so they are translated with the page."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from gateway.users.accounts import MAX_PASSWORD_LENGTH


class LoginForm(FlaskForm):
    username = StringField(validators=[InputRequired(), Length(max=64)])
    password = PasswordField(validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)])
    otp = StringField(validators=[InputRequired(), Length(max=16)])


class NewPasswordForm(FlaskForm):
    new_password = PasswordField(validators=[InputRequired()])
    confirm_password = PasswordField(validators=[InputRequired()])


class LanguageForm(FlaskForm):
    lang = StringField(validators=[InputRequired(), Length(max=8)])
    next = HiddenField()


class PurposeForm(FlaskForm):
    """Reading a signal: the purpose (checked against the policy's list by the page) and
    what to do: `read`, or `request` a second coordinator's approval."""

    purpose = StringField(validators=[InputRequired(), Length(max=64)])
    intent = StringField(validators=[Length(max=16)])


class DecisionForm(FlaskForm):
    """Approving (`decision=approve`) or refusing (`refuse`, with a reason) a request."""

    approval = HiddenField(validators=[InputRequired(), Length(max=36)])
    decision = StringField(validators=[InputRequired(), Length(max=16)])
    reason = TextAreaField(validators=[Length(max=500)])


class HandleAlertForm(FlaskForm):
    """Marking one alert handled: which alert, and the note (checked by the service,
    `gateway.alerts.service.note_problem`, so the page and the service cannot differ)."""

    alert = HiddenField(validators=[InputRequired(), Length(max=36)])
    note = TextAreaField()


class SubjectReportForm(FlaskForm):
    """Inputs named as the API's `subject` fields; sent by POST only."""

    bsn = StringField(name="bsn", validators=[Optional(), Length(max=16)])
    family_name = StringField(name="familyName", validators=[Optional(), Length(max=200)])
    given_names = StringField(name="givenNames", validators=[Optional(), Length(max=200)])
    date_of_birth = StringField(name="dateOfBirth", validators=[Optional(), Length(max=10)])
    purpose = SelectField(validators=[InputRequired()])
    format = HiddenField()
