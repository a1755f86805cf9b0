import pytest

from nonsite.config.mqtt_url import parse_broker_url


def test_plain_and_tls_urls_with_credentials():
    u = parse_broker_url("mqtts://nonsite:p%40ss@broker.example")
    assert (u.host, u.port, u.tls, u.username, u.password) == (
        "broker.example",
        8883,
        True,
        "nonsite",
        "p@ss",
    )
    assert u.redacted() == "mqtts://nonsite:***@broker.example:8883"
    v = parse_broker_url("mqtt://127.0.0.1:18830")
    assert (v.port, v.tls, v.username) == (18830, False, None)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("tcp://h:1883", "scheme"),
        ("mqtt://:1883", "no host"),
        ("mqtt://h:99999", "port"),
        ("mqtt://h/path", "no path"),
    ],
)
def test_invalid_urls(url, message):
    with pytest.raises(ValueError, match=message):
        parse_broker_url(url)
