"""Property tests of secretsapi/sigv4.py against botocore's own signer: a request signed by
SigV4Auth verifies untouched, and any change to its method, path, query, a signed header's
value or its body is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from secretsapi import sigv4

NOW = datetime(2026, 12, 1, 8, 0, 0, tzinfo=UTC)
KEY_ID = "PVAKABCDEFGHIJKLMNOP"
SECRET = "s3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tAbCd"
HOST = "vault.example.com"

# Path segments and query parts as a client puts them on the wire: unreserved characters and
# percent escapes (botocore signs the path it sends; SDKs do not normalise our single path).
UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
segment = st.text(alphabet=UNRESERVED, min_size=1, max_size=12).filter(
    lambda s: s not in (".", "..")
)
escaped = st.builds(lambda s: "%" + s, st.sampled_from(["20", "2F", "3D", "26", "C3%A9"]))
path_part = st.lists(st.one_of(segment, escaped), min_size=1, max_size=3).map("".join)
paths = st.lists(path_part, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts) + "/")
query_pairs = st.lists(
    st.tuples(st.text(alphabet=UNRESERVED, min_size=1, max_size=8), path_part),
    max_size=4,
)
# Printable ASCII with spaces inside (SigV4 collapses runs of them); never blank.
header_value = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=30
).filter(lambda v: v.strip() == v and v)
bodies = st.binary(max_size=200)
methods = st.sampled_from(["POST", "GET", "PUT", "DELETE"])


def query_string(pairs) -> str:
    return "&".join(f"{k}={v}" for k, v in pairs)


def botocore_signed(method, path, query, headers, body) -> dict:
    url = f"https://{HOST}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        SigV4Auth(Credentials(KEY_ID, SECRET), "secretsmanager", "us-east-1").add_auth(request)
    sent = {name.lower(): value for name, value in request.headers.items()}
    sent["host"] = HOST
    return sent


def received(method, path, query, headers, body) -> sigv4.ReceivedRequest:
    return sigv4.ReceivedRequest(method, path, query, headers, body)


def verifies(request: sigv4.ReceivedRequest) -> bool:
    try:
        auth = sigv4.parse_authorization(request.headers.get("authorization"))
        sigv4.verify(request, auth, SECRET, NOW)
    except sigv4.SignatureError:
        return False
    return True


extra_headers = st.dictionaries(
    st.sampled_from(["X-Amz-Target", "Content-Type", "X-Custom-One", "X-Custom-Two"]),
    header_value,
    max_size=3,
)
originals = st.tuples(methods, paths, query_pairs, extra_headers, bodies)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(originals)
def test_an_untouched_request_verifies(original):
    method, path, pairs, headers, body = original
    query = query_string(pairs)
    sent = botocore_signed(method, path, query, headers, body)
    assert verifies(received(method, path, query, sent, body))


@PROPERTY
@given(originals, methods)
def test_another_method_is_refused(original, other):
    method, path, pairs, headers, body = original
    assume(other != method)
    query = query_string(pairs)
    sent = botocore_signed(method, path, query, headers, body)
    assert not verifies(received(other, path, query, sent, body))


@PROPERTY
@given(originals, paths)
def test_another_path_is_refused(original, other):
    method, path, pairs, headers, body = original
    assume(other != path)
    query = query_string(pairs)
    sent = botocore_signed(method, path, query, headers, body)
    assert not verifies(received(method, other, query, sent, body))


@PROPERTY
@given(originals, query_pairs)
def test_another_query_is_refused(original, other_pairs):
    method, path, pairs, headers, body = original
    query, other = query_string(pairs), query_string(other_pairs)
    # The same pairs in another order are the same query (both sides sort them).
    assume(sorted(pairs) != sorted(other_pairs))
    sent = botocore_signed(method, path, query, headers, body)
    assert not verifies(received(method, path, other, sent, body))


@PROPERTY
@given(originals, st.data())
def test_another_value_of_a_signed_header_is_refused(original, data):
    method, path, pairs, headers, body = original
    query = query_string(pairs)
    sent = botocore_signed(method, path, query, headers, body)
    signed = sigv4.parse_authorization(sent["authorization"]).signed_headers
    name = data.draw(st.sampled_from(signed))
    value = data.draw(header_value)
    # Header values are compared with runs of spaces collapsed, as SigV4 specifies.
    assume(sigv4.canonical_header_value(value) != sigv4.canonical_header_value(sent[name]))
    assert not verifies(received(method, path, query, {**sent, name: value}, body))


@PROPERTY
@given(originals, st.data())
def test_a_signed_header_removed_is_refused(original, data):
    method, path, pairs, headers, body = original
    query = query_string(pairs)
    sent = botocore_signed(method, path, query, headers, body)
    name = data.draw(
        st.sampled_from(sigv4.parse_authorization(sent["authorization"]).signed_headers)
    )
    assert not verifies(
        received(method, path, query, {k: v for k, v in sent.items() if k != name}, body)
    )


@PROPERTY
@given(originals, bodies)
def test_another_body_is_refused(original, other):
    method, path, pairs, headers, body = original
    assume(other != body)
    query = query_string(pairs)
    sent = botocore_signed(method, path, query, headers, body)
    assert not verifies(received(method, path, query, sent, other))


@PROPERTY
@given(originals, st.integers(min_value=-3600, max_value=3600))
def test_the_clock_window_is_five_minutes(original, offset):
    method, path, pairs, headers, body = original
    query = query_string(pairs)
    sent = botocore_signed(method, path, query, headers, body)
    request = received(method, path, query, sent, body)
    auth = sigv4.parse_authorization(sent["authorization"])
    server_now = NOW + timedelta(seconds=offset)
    try:
        sigv4.verify(request, auth, SECRET, server_now)
        accepted = True
    except sigv4.SignatureError:
        accepted = False
    assert accepted == (abs(offset) <= 300)


# --- the header and scope rules, example by example ---------------------------------------------


def signed_example(**headers) -> tuple[sigv4.ReceivedRequest, sigv4.Authorization]:
    sent = botocore_signed("POST", "/aws/secretsmanager/", "", headers, b"{}")
    request = received("POST", "/aws/secretsmanager/", "", sent, b"{}")
    return request, sigv4.parse_authorization(sent["authorization"])


def test_a_wrong_secret_is_refused_in_constant_time_comparison():
    request, auth = signed_example()
    with mock.patch("secretsapi.sigv4.hmac.compare_digest", wraps=sigv4.hmac.compare_digest) as cmp:
        with pytest.raises(sigv4.SignatureError) as caught:
            sigv4.verify(request, auth, SECRET + "x", NOW)
    assert caught.value.code == "InvalidSignatureException" and caught.value.status == 403
    assert cmp.called


def test_the_scope_date_must_be_the_requests_date():
    request, auth = signed_example()
    other_day = sigv4.Authorization(
        auth.access_key_id,
        "20261130",
        auth.region,
        auth.service,
        auth.signed_headers,
        auth.signature,
    )
    with pytest.raises(sigv4.SignatureError, match="Date in Credential scope"):
        sigv4.verify(request, other_day, SECRET, NOW)


def test_the_payload_hash_header_is_checked_when_sent():
    request, auth = signed_example(**{"X-Amz-Content-SHA256": sigv4.payload_hash(b"{}")})
    sigv4.verify(request, auth, SECRET, NOW)
    request, auth = signed_example(**{"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    with pytest.raises(sigv4.SignatureError, match="x-amz-content-sha256"):
        sigv4.verify(request, auth, SECRET, NOW)


@pytest.mark.parametrize(
    "header,message",
    [
        (None, "Missing Authentication Token"),
        ("AWS4-HMAC-SHA1 Credential=a/b/c/d/aws4_request", "Unsupported"),
        ("AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=host", "requires"),
        (
            "AWS4-HMAC-SHA256 Credential=a/b/c/aws4_request, SignedHeaders=host, Signature="
            + "0" * 64,
            "Credential must have the form",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=Host, Signature="
            + "0" * 64,
            "lower-case",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=zz",
            "hexadecimal",
        ),
    ],
)
def test_malformed_authorization_headers(header, message):
    with pytest.raises(sigv4.SignatureError, match=message):
        sigv4.parse_authorization(header)


# --- the scope's region and the headers that must be signed -------------------------------------


def signed_in_region(region: str, leave_out: tuple[str, ...] = ()) -> sigv4.ReceivedRequest:
    class Partial(SigV4Auth):
        def headers_to_sign(self, request):
            headers = super().headers_to_sign(request)
            for name in leave_out:
                del headers[name]
            return headers

    request = AWSRequest(
        method="POST",
        url=f"https://{HOST}/aws/secretsmanager/",
        data=b"{}",
        headers={
            "X-Amz-Target": "secretsmanager.GetSecretValue",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        Partial(Credentials(KEY_ID, SECRET), "secretsmanager", region).add_auth(request)
    sent = {name.lower(): value for name, value in request.headers.items()}
    sent["host"] = HOST
    return received("POST", "/aws/secretsmanager/", "", sent, b"{}")


aws_regions = st.from_regex(r"\A[a-z]{2}(-[a-z0-9]{1,10}){1,3}-[0-9]{1,2}\Z")
# Scope parts botocore can put in an Authorization header: no "/", ",", space or control.
any_regions = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/,"),
    min_size=1,
    max_size=20,
)


@PROPERTY
@given(aws_regions)
def test_a_region_shaped_like_aws_verifies(region):
    assert verifies(signed_in_region(region))


@PROPERTY
@given(any_regions)
def test_a_region_verifies_only_when_shaped_like_aws(region):
    assert verifies(signed_in_region(region)) == bool(sigv4.REGION_RE.fullmatch(region))


@PROPERTY
@given(
    aws_regions,
    st.sampled_from([("x-amz-target",), ("content-type",), ("x-amz-target", "content-type")]),
)
def test_a_sent_operation_or_content_type_must_be_signed(region, leave_out):
    assert not verifies(signed_in_region(region, leave_out))
