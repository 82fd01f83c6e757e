"""app/part3/small_uploads.py: the lean reading of file uploads must build exactly the form
Starlette's parser builds, or step aside; and the clients people use must take the lean path."""

import httpx
import pytest
import urllib3
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from part3_support import run_in_own_thread
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from app.part3.small_uploads import files_form

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) + b"\r\n--not-the-boundary\r\n"


def starlette_form(content_type: bytes, body: bytes):
    """What Starlette's own parser makes of the body: its items as plain data, or "refused"."""

    async def parse():
        async def stream():
            yield body

        parser = MultiPartParser(Headers(raw=[(b"content-type", content_type)]), stream())
        try:
            form = await parser.parse()
        except MultiPartException:
            return "refused"
        return await plain(form)

    return run_in_own_thread(parse())


async def plain(form) -> list[tuple]:
    items = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            items.append((name, value.filename, value.headers.raw, value.size, await value.read()))
        else:
            items.append((name, value))
    return items


def lean_form(content_type: bytes, body: bytes):
    form = files_form(content_type, body)
    return None if form is None else run_in_own_thread(plain(form))


def body_of(boundary: bytes, headers: list[bytes], content: bytes, epilogue: bytes = b"\r\n") -> bytes:
    return (
        b"--"
        + boundary
        + b"\r\n"
        + b"\r\n".join(headers)
        + b"\r\n\r\n"
        + content
        + b"\r\n--"
        + boundary
        + b"--"
        + epilogue
    )


CLIENT_BODIES = {
    "httpx (TestClient, requests-like)": lambda: _httpx_body(),
    "urllib3 (requests)": lambda: _urllib3_body(),
    "curl": lambda: (
        b"multipart/form-data; boundary=------------------------d74496d66958873e",
        body_of(
            b"------------------------d74496d66958873e",
            [b'Content-Disposition: form-data; name="file"; filename="img_7.png"', b"Content-Type: image/png"],
            PNG,
        ),
    ),
    "a browser's FormData": lambda: (
        b"multipart/form-data; boundary=----WebKitFormBoundaryr9XJz2QHn5ZpCw8K",
        body_of(
            b"----WebKitFormBoundaryr9XJz2QHn5ZpCw8K",
            [b'Content-Disposition: form-data; name="file"; filename="img_7.png"', b"Content-Type: image/png"],
            PNG,
        ),
    ),
}


def _httpx_body():
    request = httpx.Request("POST", "http://test/predict/", files={"file": ("img_7.png", PNG, "image/png")})
    return request.headers["content-type"].encode(), request.read()


def _urllib3_body():
    body, content_type = urllib3.encode_multipart_formdata({"file": ("img_7.png", PNG, "image/png")})
    return content_type.encode(), body


def assert_lean_and_as_starlette(content_type: bytes, body: bytes, files: list[tuple[str, str, bytes]]) -> None:
    """The body takes the lean path, which reads `files` (field, file name, content) as Starlette would."""
    lean = lean_form(content_type, body)
    assert lean is not None, "this client's upload would take Starlette's slower parser"
    assert lean == starlette_form(content_type, body)
    assert [(field, name, content) for field, name, _, _, content in lean] == files


@pytest.mark.parametrize("client", CLIENT_BODIES)
def test_what_common_clients_send_takes_the_lean_path_and_matches_starlette(client):
    assert_lean_and_as_starlette(*CLIENT_BODIES[client](), [("file", "img_7.png", PNG)])


@pytest.mark.parametrize(
    ("why", "content_type", "body"),
    [
        (
            "a field, not a file",
            b"multipart/form-data; boundary=b",
            body_of(b"b", [b'Content-Disposition: form-data; name="file"'], b"x"),
        ),
        (
            "a file, then a field",
            b"multipart/form-data; boundary=b",
            body_of(
                b"b",
                [b'Content-Disposition: form-data; name="a"; filename="a.png"'],
                b'1\r\n--b\r\nContent-Disposition: form-data; name="epochs"\r\n\r\n2',
            ),
        ),
        (
            "a padded delimiter line",
            b"multipart/form-data; boundary=b",
            body_of(
                b"b",
                [b'Content-Disposition: form-data; name="a"; filename="a.png"'],
                b'1\r\n--b  \r\nContent-Disposition: form-data; name="b"; filename="b.png"\r\n\r\n2',
            ),
        ),
        (
            "an escaped quote in the name",
            b"multipart/form-data; boundary=b",
            body_of(b"b", [rb'Content-Disposition: form-data; name="file"; filename="a\"b.png"'], b"x"),
        ),
        (
            "a charset parameter",
            b"multipart/form-data; boundary=b; charset=latin-1",
            body_of(b"b", [b'Content-Disposition: form-data; name="file"; filename="a.png"'], b"x"),
        ),
        (
            "a quoted boundary",
            b'multipart/form-data; boundary="b"',
            body_of(b"b", [b'Content-Disposition: form-data; name="file"; filename="a.png"'], b"x"),
        ),
        (
            "another header",
            b"multipart/form-data; boundary=b",
            body_of(b"b", [b'Content-Disposition: form-data; name="file"; filename="a.png"', b"X-Extra: 1"], b"x"),
        ),
        (
            "a preamble",
            b"multipart/form-data; boundary=b",
            b"hello\r\n" + body_of(b"b", [b'Content-Disposition: form-data; name="file"; filename="a.png"'], b"x"),
        ),
        (
            "no closing delimiter",
            b"multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nx',
        ),
        ("not multipart", b"application/json", b'{"file": "a.png"}'),
    ],
)
def test_anything_unusual_is_left_to_starlette(why, content_type, body):
    assert files_form(content_type, body) is None, why


BATCH = [(f"img_{n}.png", PNG + bytes([n]), "image/png") for n in range(5)]
BATCH_BODIES = {
    "httpx": lambda: _encoded(httpx.Request("POST", "http://test/", files=[("files", file) for file in BATCH])),
    "urllib3 (requests)": lambda: _swap(urllib3.encode_multipart_formdata([("files", file) for file in BATCH])),
}


def _encoded(request):
    return request.headers["content-type"].encode(), request.read()


def _swap(encoded):
    body, content_type = encoded
    return content_type.encode(), body


@pytest.mark.parametrize("client", BATCH_BODIES)
def test_a_batch_of_files_takes_the_lean_path_and_matches_starlette(client):
    assert_lean_and_as_starlette(*BATCH_BODIES[client](), [("files", name, data) for name, data, _ in BATCH])


def test_more_files_than_starlette_allows_are_left_to_its_refusal():
    content_type, body = BATCH_BODIES["httpx"]()
    assert files_form(content_type, body, max_files=len(BATCH)) is not None
    assert files_form(content_type, body, max_files=len(BATCH) - 1) is None


printable = st.characters(min_codepoint=0x20, max_codepoint=0x2FF)
boundaries = st.text(alphabet="0123456789abcdefABCDEF-_'()+,./:=?", min_size=1, max_size=70)


def mostly(usual, *others):
    """The usual value most of the time (so that most bodies take the lean path), else a variant."""
    return st.sampled_from([usual] * 8 + list(others))


@st.composite
def uploads(draw):
    """Bodies in and near the lean shape, of one to three parts: every piece of them drawn, so that
    some fall just outside."""
    boundary = draw(boundaries).encode()
    content_type = (
        draw(
            mostly(
                b"multipart/form-data; boundary=", b"Multipart/Form-Data;boundary=", b"multipart/form-data;  boundary="
            )
        )
        + boundary
    )
    parts = [draw(file_parts(boundary)) for _ in range(draw(st.integers(1, 3)))]
    (headers, content), rest = parts[0], parts[1:]
    for more_headers, more_content in rest:
        separator = draw(mostly(b"\r\n--" + boundary + b"\r\n", b"\r\n--" + boundary + b" \r\n", b"\r\n"))
        content += separator + b"\r\n".join(more_headers) + b"\r\n\r\n" + more_content
    epilogue = draw(mostly(b"\r\n", b"", b"\r\n\r\n", b"--", b"trailing"))
    return content_type, body_of(boundary, headers, content, epilogue)


@st.composite
def file_parts(draw, boundary: bytes):
    """One part's header lines and content, mostly a file in the usual shape."""
    name = draw(mostly("file", "files", "", "fi le", "f\u00efle", None)) or draw(st.text(printable, max_size=8))
    filename = draw(mostly("img_7.png", "a;b.png", "c:\\x\\y.png", "\u00e9.png", " s .png", None)) or draw(
        st.text(printable, max_size=12)
    )
    disposition = draw(
        mostly(
            'form-data; name="{}"; filename="{}"',
            'Form-Data; name="{}"; filename="{}"',
            'form-data; filename="{1}"; name="{0}"',
            'form-data;name="{}";filename="{}"',
            'form-data; name="{}"',
        )
    )
    headers = [b"Content-Disposition: " + disposition.format(name, filename).encode()]
    if draw(st.booleans()):
        headers.append(
            draw(
                mostly(
                    b"Content-Type: image/png",
                    b"content-type: image/png",
                    b"Content-Type:  image/png",
                    b"Content-Type: image/png ",
                )
            )
        )
    if draw(st.booleans()):
        headers.reverse()
    content = draw(mostly(PNG, b"\r\n--" + boundary, b"--" + boundary + b"--", None)) or draw(st.binary(max_size=64))
    return headers, content


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(uploads())
@example(
    (
        b"multipart/form-data; boundary=b",
        body_of(b"b", [b'Content-Disposition: form-data; name="file"; filename="a.png"'], b""),
    )
)
def test_the_lean_form_is_starlettes_form_whenever_it_is_used(upload):
    content_type, body = upload
    lean = lean_form(content_type, body)
    if lean is not None:
        assert lean == starlette_form(content_type, body)


def test_starlettes_private_form_cache_still_returns_the_lean_form(monkeypatch):
    """small_uploads overrides Starlette's private `Request._get_form` and fills its `_form` cache:
    this fails when Starlette renames either or stops returning the cached form."""
    from app.part3 import small_uploads

    built = []
    real = small_uploads.files_form
    monkeypatch.setattr(small_uploads, "files_form", lambda *args: built.append(real(*args)) or built[-1])
    request = httpx.Request("POST", "http://test/predict/", files={"file": ("img_7.png", PNG, "image/png")})
    body = request.read()
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/predict/",
        "headers": [
            (b"content-type", request.headers["content-type"].encode()),
            (b"content-length", str(len(body)).encode()),
        ],
    }

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def parse():
        lean = small_uploads.SmallUploadRequest(scope, receive)
        assert lean._form is None
        return await lean.form()

    form = run_in_own_thread(parse())
    assert built and built[0] is not None and form is built[0]
