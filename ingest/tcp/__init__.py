"""The HJ 212 TCP gateway: data loggers connect as the standard has them (a TCP client pushing
to the platform); their packets go on to the broker, so the rest of nonsite is unchanged."""
