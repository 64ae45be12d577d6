"""The local broker's storage is formatted with a cluster id the storage tool can parse."""

from __future__ import annotations

import base64

from sambus.router.dev.local_kafka import new_cluster_id


def test_cluster_ids_never_start_with_a_dash_and_decode_to_sixteen_bytes() -> None:
    ids = [new_cluster_id() for _ in range(5000)]

    assert not [cluster_id for cluster_id in ids if cluster_id.startswith("-")]
    assert {len(base64.urlsafe_b64decode(cluster_id + "==")) for cluster_id in ids} == {16}
    assert len(set(ids)) == len(ids)
