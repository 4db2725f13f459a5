"""The HTTP server's access log: one JSON object per request."""

from __future__ import annotations

import io
import json
import logging
import os

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from annexproxy.server.access_log import JsonAccessLogger, plain_handler


def test_each_request_is_one_json_line(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("annexproxy.test.access")
    access = JsonAccessLogger(logger, "")
    path = '/git-annex/odd"name\\é/v4/key/K'
    request = make_mocked_request("GET", path)
    response = web.Response(body=b"12345", status=206)
    with caplog.at_level(logging.INFO, logger=logger.name):
        access.log(request, response, 0.0123456789)
    (record,) = caplog.records
    line = json.loads(record.getMessage())
    assert line["method"] == "GET"
    assert line["path"] == path
    assert line["status"] == 206
    assert line["bytes"] == 5
    assert line["seconds"] == pytest.approx(0.012346)
    assert isinstance(line["t"], float)
    assert set(line) == {"t", "method", "path", "status", "bytes", "seconds", "remote"}


def test_nothing_is_formatted_when_the_log_is_off(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("annexproxy.test.access.off")
    access = JsonAccessLogger(logger, "")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        access.log(make_mocked_request("GET", "/"), web.Response(), 0.1)
    assert caplog.records == []


def _isolated_logger(name: str, *handlers: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    for handler in handlers:
        logger.addHandler(handler)
    return logger


def test_a_plain_stream_handler_gets_the_same_line_written_directly() -> None:
    direct = io.StringIO()
    plain = logging.StreamHandler(direct)
    plain.setFormatter(logging.Formatter("%(message)s"))
    logger = _isolated_logger("annexproxy.test.access.plain", plain)
    assert plain_handler(logger) is plain
    request = make_mocked_request("GET", "/git-annex/u/v4/key/K")
    response = web.Response(body=b"abc")
    JsonAccessLogger(logger, "").log(request, response, 0.5)
    (line,) = direct.getvalue().splitlines(keepends=True)
    assert line.endswith("\n")
    assert json.loads(line)["path"] == "/git-annex/u/v4/key/K"
    assert json.loads(line)["bytes"] == 3


class _Tagged(logging.Formatter):
    pass


@pytest.mark.parametrize(
    "setup",
    [
        "two handlers",
        "filter on the logger",
        "filter on the handler",
        "other format",
        "formatter subclass",
        "handler subclass",
        "level above info",
        "no handler",
    ],
)
def test_anything_but_the_plain_setup_goes_through_logging(setup: str) -> None:
    stream = io.StringIO()
    handler: logging.Handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handlers = [handler]
    if setup == "two handlers":
        handlers.append(logging.StreamHandler(io.StringIO()))
    elif setup == "filter on the handler":
        handler.addFilter(logging.Filter("annexproxy"))
    elif setup == "other format":
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    elif setup == "formatter subclass":
        handler.setFormatter(_Tagged("%(message)s"))
    elif setup == "handler subclass":
        handler = logging.FileHandler(os.devnull)
        handlers = [handler]
    elif setup == "level above info":
        handler.setLevel(logging.WARNING)
    elif setup == "no handler":
        handlers = []
    logger = _isolated_logger(f"annexproxy.test.access.{setup.replace(' ', '_')}", *handlers)
    if setup == "filter on the logger":
        logger.addFilter(logging.Filter("annexproxy"))
    assert plain_handler(logger) is None
    if setup == "other format":
        JsonAccessLogger(logger, "").log(make_mocked_request("GET", "/p"), web.Response(), 0.1)
        (line,) = stream.getvalue().splitlines()
        assert line.startswith('INFO {"t":')  # the handler's own format was applied
    handler.close()
