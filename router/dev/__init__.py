"""Development aids: a local Kafka broker from Maven Central jars, and the demo (production leaves it out)."""
