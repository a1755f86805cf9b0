"""The WeCom group robot against a real local HTTP server standing in for qyapi.weixin.qq.com."""

from __future__ import annotations

from contextlib import closing

import pytest

from alerts.channels import WeComChannel
from alerts.channels.wecom import MAX_CONTENT_BYTES, markdown_content, truncate_utf8
from tests.alerts.channels.receiver import Receiver
from tests.alerts.channels.samples import closed_port, notification, send_error

KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
OK = {"errcode": 0, "errmsg": "ok"}


def robot(rx: Receiver, **kw) -> WeComChannel:
    rx.respond(200, OK)
    return WeComChannel("wecom", f"{rx.url}?key={KEY}", **kw)


@pytest.mark.integration
def test_delivers_a_markdown_message():
    n = notification()
    with Receiver() as rx, closing(robot(rx)) as ch:
        ch.send(n)
        [req] = rx.requests
    assert req.query == {"key": [KEY]}
    assert req.header("Content-Type") == "application/json; charset=utf-8"
    assert req.json() == {
        "msgtype": "markdown",
        "markdown": {"content": f"**{n.title}**\n{n.text}\n> 编号 {n.key}"},
    }


@pytest.mark.integration
def test_long_chinese_text_is_cut_to_4096_bytes_keeping_title_and_key():
    n = notification(text="颗粒物小时均值超标，" * 1000)  # 30 000 bytes of 3-byte characters
    with Receiver() as rx, closing(robot(rx)) as ch:
        ch.send(n)
        [req] = rx.requests
    content = req.json()["markdown"]["content"]
    size = len(content.encode("utf-8"))
    assert MAX_CONTENT_BYTES - 3 < size <= MAX_CONTENT_BYTES  # whole characters only
    head, tail = f"**{n.title}**\n", f"\n> 编号 {n.key}"
    assert content.startswith(head)
    assert content.endswith("…" + tail)
    kept = content[len(head) : -len(tail) - 1]
    assert n.text.startswith(kept)
    assert len(kept) > 1000


def test_content_exactly_at_the_limit_is_not_cut():
    n = notification(text="")
    base = len(markdown_content(n).encode("utf-8"))
    fits = notification(text="x" * (MAX_CONTENT_BYTES - base))
    assert markdown_content(fits) == f"**{fits.title}**\n{fits.text}\n> 编号 {fits.key}"
    assert len(markdown_content(fits).encode("utf-8")) == MAX_CONTENT_BYTES
    over = notification(text="x" * (MAX_CONTENT_BYTES - base + 1))
    assert "…" in markdown_content(over)
    assert len(markdown_content(over).encode("utf-8")) == MAX_CONTENT_BYTES


@pytest.mark.parametrize("max_bytes", range(14))
def test_truncate_utf8_never_splits_a_character(max_bytes):
    text = "超标a排放b"  # 3-byte and 1-byte characters mixed
    cut = truncate_utf8(text, max_bytes)
    assert len(cut.encode("utf-8")) <= max_bytes
    if cut != text:
        assert cut == "" or (cut.endswith("…") and text.startswith(cut[:-1]))


def test_an_absurdly_long_title_still_fits():
    n = notification(title="标题" * 2000)
    assert len(markdown_content(n).encode("utf-8")) <= MAX_CONTENT_BYTES


@pytest.mark.integration
def test_mentioned_mobiles_are_sent_along():
    with Receiver() as rx, closing(robot(rx, mentioned_mobiles=["13800001111"])) as ch:
        ch.send(notification())
        [req] = rx.requests
    assert req.json()["markdown"]["mentioned_mobile_list"] == ["13800001111"]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("errcode", "retryable"),
    [
        (45009, True),  # api freq out of limit
        (-1, True),  # 系统繁忙
        (93000, False),  # invalid webhook url
        (40008, False),  # invalid message type
    ],
)
def test_errcodes_decide_retrying(errcode, retryable):
    with Receiver() as rx, closing(robot(rx)) as ch:
        rx.respond(200, {"errcode": errcode, "errmsg": "refused"})
        err = send_error(ch)
    assert err.retryable is retryable
    assert str(errcode) in err.detail
    assert KEY not in err.detail  # the robot key is a credential


@pytest.mark.integration
@pytest.mark.parametrize(("status", "retryable"), [(500, True), (429, True), (403, False)])
def test_http_errors_as_for_the_webhook(status, retryable):
    with Receiver() as rx, closing(robot(rx)) as ch:
        rx.respond(status, "nope")
        err = send_error(ch)
    assert err.retryable is retryable


@pytest.mark.integration
def test_connection_refused_is_retryable():
    ch = WeComChannel("wecom", f"http://127.0.0.1:{closed_port()}/send?key={KEY}")
    with closing(ch):
        err = send_error(ch)
    assert err.retryable
