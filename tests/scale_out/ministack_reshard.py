"""Runs ministack with Kinesis's reshard semantics (run by the ministack venv's Python).

ministack 1.5.33's SplitShard deletes the parent shard and its unread records at once. Kinesis
instead closes the parent: it stays listed (with an EndingSequenceNumber) and readable until its
retention ends, new records go to the children only, and the GetRecords call that reaches the
end of the closed parent returns no NextShardIterator and the ChildShards. The KCL relies on the
latter to create the children's leases at once (without it, the KCL treats the vanished parent
as ended and only its periodic lease audit, every 2 minutes and after 3 sightings of the hole in
the hash range, creates them). These four functions are replaced before ministack starts.
"""

from __future__ import annotations

import json
from typing import Any

from ministack.services import kinesis as k

_split_shard = k._split_shard
_get_records = k._get_records
_shard_out = k._shard_out


def split_shard(data: dict[str, Any]) -> Any:
    _, stream = k._resolve_stream(data)
    shard_id = data.get("ShardToSplit")
    parent = stream["shards"].get(shard_id) if stream else None
    if parent is not None and parent.get("closed"):
        return k.error_response_json("ResourceInUseException", f"shard {shard_id} is closed", 400)
    resp = _split_shard(data)
    if resp[0] == 200 and parent is not None:
        parent["closed"] = True
        records = parent["records"]
        parent["ending_sequence_number"] = (
            records[-1]["SequenceNumber"] if records else parent["starting_sequence_number"]
        )
        stream["shards"][shard_id] = parent  # kept: closed, still readable
    return resp


def route_to_shard(hash_key: int, stream: dict[str, Any]) -> str:
    open_shards = [(sid, s) for sid, s in stream["shards"].items() if not s.get("closed")]
    for sid, shard in open_shards:
        if int(shard["starting_hash_key"]) <= hash_key <= int(shard["ending_hash_key"]):
            return sid
    return open_shards[0][0]


def shard_out(shard_id: str, shard: dict[str, Any]) -> dict[str, Any]:
    out = _shard_out(shard_id, shard)
    if shard.get("closed"):
        out["SequenceNumberRange"]["EndingSequenceNumber"] = shard["ending_sequence_number"]
    return out


def get_records(data: dict[str, Any]) -> Any:
    state = dict(k._shard_iterators.get(data.get("ShardIterator")) or {})
    status, headers, body = _get_records(data)
    if status != 200 or not state:
        return status, headers, body
    stream = k._streams.get(state["stream"])
    shard = stream["shards"].get(state["shard_id"]) if stream else None
    if shard is None or not shard.get("closed"):
        return status, headers, body
    out = json.loads(body)
    following = k._shard_iterators.get(out.get("NextShardIterator"))
    if following is not None and following["position"] >= len(shard["records"]):
        del k._shard_iterators[out.pop("NextShardIterator")]
        parent = state["shard_id"]
        out["ChildShards"] = [
            {
                "ShardId": sid,
                "ParentShards": [
                    p for p in (s.get("parent_shard_id"), s.get("adjacent_parent_shard_id")) if p
                ],
                "HashKeyRange": {
                    "StartingHashKey": s["starting_hash_key"],
                    "EndingHashKey": s["ending_hash_key"],
                },
            }
            for sid, s in sorted(stream["shards"].items())
            if parent in (s.get("parent_shard_id"), s.get("adjacent_parent_shard_id"))
        ]
    return status, headers, json.dumps(out).encode()


k._split_shard = split_shard
k._route_to_shard = route_to_shard
k._shard_out = shard_out
k._get_records = get_records

if __name__ == "__main__":
    from ministack.app import main

    main()
