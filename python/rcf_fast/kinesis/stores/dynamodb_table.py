"""Creating the DynamoDB tables the stores use (one string hash key, on-demand billing)."""

from __future__ import annotations

from typing import Any


def ensure_hash_table(client: Any, table: str, key: str) -> None:
    """Create `table` with string hash key `key` if it does not exist, and wait until it does."""
    try:
        client.describe_table(TableName=table)
        return
    except client.exceptions.ResourceNotFoundException:
        pass
    client.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
    )
    client.get_waiter("table_exists").wait(
        TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
