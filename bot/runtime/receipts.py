"""Providers' delivery receipts (sent, delivered, read, failed) onto the timeline.

A receipt is an inbox item of kind ``receipt``. It is never decided: no
lease, no flow, no customer document. It only moves the status of the
message it names, found by the provider's id, so this path stays cheap
(WhatsApp sends up to three receipts per message): one bulk write for a
whole pass of receipts, plus one write to mark them done.

Durability (see ``bot.infra.database``): receipts and their done marks are
written without a journal sync; losing one repeats no send and loses no
input (``Database.unjournaled`` says why).

Flow statistics: when the caller counts (``counters``), the messages the
receipts name are read first, in one query by provider id (which also tells
which receipts match nothing yet), so that a message's delivery and reading
are counted once each, on the step that sent it (``bot.core.stats``); the
caller writes the counters with the rest of its pass.

Waits on a message's fate (``watch`` in ``bot.core.commands``): the same
read says which of the messages a run watches; only those produce an inbox
item (``message_fate``), decided for their customer (``Router.message_fate``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from bot.core.stats import Counters, receipt_outcome
from bot.infra.database import Database, find_in, update_each
from bot.runtime.failures import REPORTED_FIELDS, failure_report
from bot.runtime.inbox import make_item
from bot.types import Doc

# How far along a message is; a receipt never moves it back (read stays read).
STATUS_RANK = {"queued": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4, "undelivered": 4}
RECEIPT_ATTEMPTS = 5  # passes a receipt waits for its message's provider id


def receipt_update(receipt: Doc) -> UpdateOne:
    """The update of one receipt, filtered on the indexed provider id alone.

    The history always grows; the status only moves forward.
    """
    entry: Doc = {"status": receipt["status"], "at": receipt["at"]}
    if receipt.get("error_code"):
        entry["error"] = f"{receipt['error_code']}: {receipt.get('error_message') or ''}"
    rank = STATUS_RANK.get(receipt["status"], 0)
    ahead = {"$lt": [{"$ifNull": ["$status_rank", 0]}, rank]}
    changes: Doc = {
        "status_history": {"$concatArrays": [{"$ifNull": ["$status_history", []]},
                                             [{"$literal": entry}]]},
        "status": {"$cond": [ahead, receipt["status"], "$status"]},
        "status_rank": {"$max": [{"$ifNull": ["$status_rank", 0]}, rank]},
    }
    if "error" in entry:
        changes["error"] = {"$cond": [ahead, entry["error"], "$error"]}
    return UpdateOne({"provider_id": receipt["provider_id"]}, [{"$set": changes}])


async def _report_failures(database: Database, receipts: list[Doc],
                           report: Callable[[Doc], Awaitable[bool]]) -> None:
    """Report the failed receipts that carry a meaning, once per message."""
    by_provider = {receipt["provider_id"]: receipt for receipt in receipts}
    fields = {name: 1 for name in (*REPORTED_FIELDS, "customer", "provider_id")}
    async for message in find_in(database.messages, "provider_id", list(by_provider), fields):
        receipt = by_provider[message["provider_id"]]
        code = receipt.get("error_code")
        error = f"{code}: {receipt.get('error_message') or ''}"[:500]
        await report(failure_report(message, error, code, receipt["meaning"]))


STATS_FIELDS = {"provider_id": 1, "status_rank": 1, "flow": 1, "step": 1, "flow_version": 1,
                "variant": 1}
# What a watched message's fate report needs (``watch`` in ``bot.core.commands``).
WATCH_FIELDS = {"watch": 1, "customer": 1, "run": 1, "channel": 1}
# How far each receipt takes a message, for a watch: a read message was delivered.
PROGRESS = {"delivered": 1, "read": 2, "clicked": 3}


def fate(watch: str, receipt: Doc) -> str | None:
    """The fate a receipt tells a watch waiting for ``watch``, if it tells one.

    A failure ends any watch; one whose code carries a meaning is not a fate
    here, since its failure report already tells the run (``Router.send_failed``).
    """
    status = receipt["status"]
    if status in ("failed", "undelivered"):
        return None if receipt.get("meaning") else "failed"
    if watch in PROGRESS and PROGRESS.get(status, 0) >= PROGRESS[watch]:
        return watch
    return None


async def _report_fates(before: dict[Any, Doc], receipts: list[Doc],
                        report: Callable[[Doc], Awaitable[bool]]) -> None:
    """Report the first fate of each watched message among ``receipts`` to its customer.

    Most messages are not watched, and those produce nothing: the receipt
    pass stays one bulk write. The report's id is the message's, so a fate
    is reported once whatever the receipts that follow.
    """
    for receipt in receipts:
        message = before.get(receipt["provider_id"])
        if not message or not message.get("watch") or not message.get("customer"):
            continue
        found = fate(message["watch"], receipt)
        if found is None:
            continue
        await report(make_item(
            dedupe_id=f"fate:{message['_id']}", kind="message_fate", source=receipt["channel"],
            keys=[f"id:{message['customer']}"],
            payload={"message_id": message["_id"], "flow": message.get("flow"),
                     "run": message.get("run"), "step": message.get("step"), "fate": found,
                     "channel": message.get("channel"), "at": receipt["at"],
                     "error": receipt.get("error_code")}))


async def apply_receipts(database: Database, items: list[Doc], now: datetime | None = None,
                         counters: Counters | None = None,
                         report: Callable[[Doc], Awaitable[bool]] | None = None) -> int:
    """Apply a pass of receipts in one bulk write; returns how many are done.

    A receipt that arrives before the send recorded the provider's id is
    tried again on later passes, then kept as done. With ``counters`` (and
    ``now``, the day they are counted on), what the receipts move is counted.
    A failed receipt whose code means something for the customer (an
    opt-out at the provider, a dead address, the per-user marketing limit:
    its ``meaning``) is reported to the customer's decision through
    ``report`` (rare: one extra read for the messages they name), and so is
    the fate of a message a run watches (``watch``): the read that finds the
    messages for the statistics also says which are watched.
    """
    if not items:
        return 0
    meaningful = [item["payload"] for item in items if item["payload"].get("meaning")
                  and item["payload"]["status"] in ("failed", "undelivered")]
    if meaningful and report is not None:
        await _report_failures(database, meaningful, report)
    before: dict[Any, Doc] | None = None
    if (counters is not None and now is not None) or report is not None:
        # One read serves the statistics and the watches (and which receipts matched).
        before = {doc["provider_id"]: doc async for doc in find_in(
            database.messages, "provider_id", [i["payload"]["provider_id"] for i in items],
            {**STATS_FIELDS, **WATCH_FIELDS})}
    operations = [receipt_update(item["payload"]) for item in items]
    written = await database.unjournaled("messages").bulk_write(operations, ordered=False)
    if before is not None and report is not None:
        await _report_fates(before, [item["payload"] for item in items], report)
    if counters is not None and before is not None and now is not None:
        ranks: dict[Any, list[int]] = {}
        for item in items:
            receipt = item["payload"]
            ranks.setdefault(receipt["provider_id"], []).append(
                STATUS_RANK.get(receipt["status"], 0))
        for provider_id, message in before.items():
            receipt_outcome(counters, message, ranks.get(provider_id, []), now)
    done, retry = [], []
    if written.matched_count >= len(operations):
        done = [item["_id"] for item in items]
    else:
        # Find which receipts matched nothing (rare: only early ones).
        known = set(before) if before is not None else {
            doc["provider_id"] async for doc in find_in(
                database.messages, "provider_id", [i["payload"]["provider_id"] for i in items],
                {"provider_id": 1})}
        for item in items:
            if item["payload"]["provider_id"] in known or item.get(
                    "attempts", 0) + 1 >= RECEIPT_ATTEMPTS:
                done.append(item["_id"])
            else:
                retry.append(item["_id"])
    inbox = database.unjournaled("inbox")
    if done:
        await update_each(inbox, done, {"$set": {"state": "done"}})
    if retry:
        # Unmatched receipts were pushed nowhere; try them again next pass.
        await update_each(inbox, retry, {"$inc": {"attempts": 1}})
    return len(done)
