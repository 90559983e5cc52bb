"""An ordinary 4xx is one log line; a 5xx keeps its traceback."""

import logging

import pytest
from django.urls import reverse

from annotation.log_filters import ClientErrorsWithoutTraceback

pytestmark = pytest.mark.django_db


def _records(caplog):
    return [r for r in caplog.records if r.name == "django.request"]


def test_a_forbidden_page_logs_one_line_without_a_traceback(
    client, django_user_model, caplog
):
    user = django_user_model.objects.create_user(username="norole", password="x")
    client.force_login(user)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get(reverse("grade")).status_code == 403
    [record] = _records(caplog)
    assert record.getMessage() == "Forbidden (Permission denied): /grade/"
    # Django attaches the exception; the console handler's filter (settings)
    # dropped it before any handler formatted the record.
    assert record.exc_info is None
    assert logging.Formatter().format(record) == (
        "Forbidden (Permission denied): /grade/"
    )


def test_a_server_error_keeps_its_traceback():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "django.request", logging.ERROR, __file__, 1, "Internal Server Error: /x/",
            None, sys.exc_info(),
        )  # fmt: skip
    record.status_code = 500
    assert ClientErrorsWithoutTraceback().filter(record)
    assert "Traceback" in logging.Formatter().format(record)


def test_the_console_handler_carries_the_filter(settings):
    handler = settings.LOGGING["handlers"]["console"]
    assert "client_errors_one_line" in handler["filters"]
    assert settings.LOGGING["filters"]["client_errors_one_line"]["()"].endswith(
        "ClientErrorsWithoutTraceback"
    )
