"""The HTTP server's access log: one JSON object per request."""

from __future__ import annotations

import json
import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from annexproxy.server.http_api import JsonAccessLogger


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
