"""Rule stage: readings → findings (exceedance, data-anomaly and power-usage rules).

Built in issue #3; ingest hands it typed reading batches (``ingest.readings``).
"""
