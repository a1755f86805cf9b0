"""The MQTT side of ingest: topic routing and the paho-mqtt source with manual acknowledgement."""
