"""Notification channels: deliver one rendered notification to one destination.

The outbox dispatcher calls :meth:`Channel.send`; it returns on delivery or raises
:class:`DeliveryError`, whose ``retryable`` says whether trying again later can help.
Channels: generic signed webhook, DingTalk and WeCom group robots, e-mail, MQTT.
"""

from alerts.channels.base import Channel, DeliveryError, Notification
from alerts.channels.dingtalk import DingTalkChannel
from alerts.channels.factory import build_channel
from alerts.channels.mqtt import MqttChannel
from alerts.channels.smtp import SmtpChannel
from alerts.channels.webhook import WebhookChannel, verify_signature
from alerts.channels.wecom import WeComChannel

__all__ = [
    "Channel",
    "DeliveryError",
    "DingTalkChannel",
    "MqttChannel",
    "Notification",
    "SmtpChannel",
    "WeComChannel",
    "WebhookChannel",
    "build_channel",
    "verify_signature",
]
