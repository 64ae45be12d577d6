"""Kafka mechanics: records, topics and admin, dead letters, retries, the parked topic's headers."""
