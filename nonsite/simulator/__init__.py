"""The fleet simulator (`nonsite simulate`): HJ 212 frames and power JSON from a configured
fleet over MQTT, in simulated time."""
