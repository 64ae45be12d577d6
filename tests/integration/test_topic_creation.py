"""Topics are created from the one list with the settings' partitions and replicas, and a refusal is said."""

from __future__ import annotations

import pytest

from sambus.contracts.errors import ConfigError
from sambus.contracts.topics import Topics
from sambus.router.kafka.admin import ensure_topics, partitions_of

pytestmark = pytest.mark.kafka


@pytest.mark.asyncio
async def test_the_topics_are_created_with_the_configured_partitions(kafka_bootstrap: str, topics: Topics):
    wanted = Topics(prefix=topics.prefix, partitions=2)

    created = await ensure_topics(kafka_bootstrap, wanted.specs(("a-school",), retry_levels=1))
    again = await ensure_topics(kafka_bootstrap, wanted.specs(("a-school",), retry_levels=1))

    assert sorted(created) == sorted(spec.name for spec in wanted.specs(("a-school",), retry_levels=1))
    assert again == []
    described = await partitions_of(kafka_bootstrap, [wanted.intents, wanted.dlq, wanted.retry(1)])
    assert {name: len(found) for name, found in described.items()} == {
        wanted.intents: 2,
        wanted.dlq: 1,
        wanted.retry(1): 2,
    }


@pytest.mark.asyncio
async def test_more_replicas_than_brokers_is_refused_by_name(kafka_bootstrap: str, topics: Topics):
    wanted = Topics(prefix=topics.prefix, replication_factor=2, min_insync_replicas=2)  # one broker

    with pytest.raises(ConfigError, match=rf"cannot create topic {wanted.intents} .*replication factor 2"):
        await ensure_topics(kafka_bootstrap, [wanted.spec("intents")])

    assert await partitions_of(kafka_bootstrap, [wanted.intents]) == {}
