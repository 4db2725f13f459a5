"""Request signing of the S3 client against AWS's published examples, and error parsing."""

from __future__ import annotations

import calendar
import time

from annexproxy.special.s3client import _error_of, sign_v2, sign_v4

AWS_KEYS = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_v4_matches_the_aws_get_object_example() -> None:
    # "Example: GET Object" of AWS's "Signature Calculations for the Authorization
    # Header" (Signature Version 4, S3 API reference).
    headers = {"Range": "bytes=0-9"}
    sign_v4(
        method="GET",
        host="examplebucket.s3.amazonaws.com",
        path="/test.txt",
        params={},
        headers=headers,
        credentials=AWS_KEYS,
        region="us-east-1",
        now=calendar.timegm(time.strptime("20130524T000000Z", "%Y%m%dT%H%M%SZ")),
        payload_hash=EMPTY_SHA256,
    )
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_v2_signs_the_subresources_in_order() -> None:
    headers = {"Content-Type": "application/octet-stream", "x-amz-meta-B": " two  words "}
    sign_v2(
        method="PUT",
        resource="/bucket/key",
        params={"uploadId": "U", "partNumber": "3", "other": "x"},
        headers=headers,
        credentials=AWS_KEYS,
        now=0.0,
    )
    assert headers["Date"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert headers["Authorization"].startswith("AWS AKIAIOSFODNN7EXAMPLE:")


def test_error_answers_name_their_code() -> None:
    body = (
        b'<?xml version="1.0"?><Error><Code>NoSuchBucket</Code>'
        b"<Message>The specified bucket does not exist</Message></Error>"
    )
    error = _error_of(404, body)
    assert (error.status, error.code) == (404, "NoSuchBucket")
    assert "does not exist" in error.message
    assert _error_of(403, b"").code == "403"  # a HEAD answer has no body
    assert _error_of(500, b"not xml").code == "500"
