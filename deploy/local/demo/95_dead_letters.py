"""What nobody could handle today: every record on civicgrid.deadletter, each with who gave up on
it and why, in words an operator acts on (`civicgrid dead-letters` lists the same). A record is
dead-lettered rather than retried for ever when no retry can make it acceptable; it stays there,
untouched, until someone fixes the cause and produces it back to its topic."""
from __future__ import annotations

from civicgrid_common.consumer import DEAD_LETTER_TOPIC, DeadLetter, read_dead_letters

# What a rejection's reason means (the first word of approval's RejectedOpinion messages).
_OPINION_REASONS = {
    "stale-task": "a department system answered a task that is no longer current (late, or twice); the approval "
                  "went on without it",
    "wrong-source": "an opinion arrived under another system's source; only a department's own system may answer",
    "schema-violation": "the record breaks its contract in contracts/: the sender must fix it",
    "not-an-opinion": "something other than an opinion was sent on an opinions topic",
    "unknown-approval": "the opinion names an approval that does not exist",
    "refused": "the approval's rules refused the opinion",
}


def explain(letter: DeadLetter) -> str:
    reason = letter.error_message.split(":", 1)[0]
    if letter.error_type.endswith("RejectedOpinion") and reason in _OPINION_REASONS:
        return _OPINION_REASONS[reason]
    if letter.event_type.startswith("civicgrid.test."):
        return "a test's event: tests must use their own topics (this is a defect of the test suite)"
    if letter.error_type.endswith("PoisonEvent") or "Poison" in letter.error_type:
        return "the handler found it unusable: no retry could make it acceptable"
    return f"{letter.consumer_group} gave up after its retries; fix the cause, then produce it back to " \
           f"{letter.original_topic}"


async def run(ctx) -> None:
    letters = await read_dead_letters(ctx.settings.kafka_bootstrap, DEAD_LETTER_TOPIC)
    if not letters:
        ctx.say(f"{DEAD_LETTER_TOPIC} is empty: every record of the day was handled")
        return
    ctx.say(f"{len(letters)} record(s) on {DEAD_LETTER_TOPIC}:")
    for d in letters:
        ctx.say(f"  {d.failed_at}  {d.event_type} from {d.source}, given up by {d.consumer_group}")
        ctx.say(f"    why: {explain(d)}")
        ctx.say(f"    error: {d.error_message[:160]}")
