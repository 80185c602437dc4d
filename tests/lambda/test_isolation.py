"""The in-process accounts of these tests leave the shared emulator's state alone.

moto keeps one set of backends per process; the session-wide emulator (moto's server in a
thread) used by other test tiers serves from the same backends. An ``emulated_account``
must neither wipe what the emulator holds nor see it.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from .support import TABLE, emulated_account, t2i


@pytest.mark.emulator
def test_emulated_accounts_do_not_reset_the_shared_emulator(emulator: Any) -> None:
    ddb = boto3.client("dynamodb", endpoint_url=emulator.endpoint)
    name = "lambda-isolation-probe"
    if name not in ddb.list_tables()["TableNames"]:
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    ddb.put_item(TableName=name, Item={"id": {"S": "kept"}})

    with emulated_account() as account:
        assert account.post(t2i("iso-1")).status == 202
        # Each emulated account is its own AWS account: the probe is not visible here.
        assert name not in account.ddb.list_tables()["TableNames"]
        assert TABLE in account.ddb.list_tables()["TableNames"]

    assert ddb.get_item(TableName=name, Key={"id": {"S": "kept"}})["Item"] == {"id": {"S": "kept"}}
    assert TABLE not in ddb.list_tables()["TableNames"]
    ddb.delete_table(TableName=name)
