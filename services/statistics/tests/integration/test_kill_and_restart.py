"""Two faust workers over a stream of generated events, SIGKILLed and restarted mid-stream
several times while the stream is still being published: faust redelivers whatever was not
committed and rebalances partitions between them, and still every figure equals the count
from the raw events, and the fact store holds each event exactly once."""
from __future__ import annotations

import asyncio
import random

import asyncpg

from statistics_stack import end_offsets, publish, wait_for_facts
from event_stream import COMMUNITIES, generate
from test_kpis_from_raw_events import CASE_FIGURES, COMPLAINT_FIGURES


async def test_killing_and_restarting_two_workers_changes_no_figure(stats_settings, topics, workers, stats, token):
    stats_settings.faust_session_timeout = 8.0  # a killed worker's partitions move on sooner
    stream = generate(cases=500, complaints=300, seed=23)
    records = stream.records(topics, duplicate_share=0.05)
    pair = workers(2)
    for w in pair:
        w.start()
    rng = random.Random(5)
    chunks = 6
    size = len(records) // chunks + 1
    kills = 0
    for i in range(chunks):
        await publish(stats_settings, records[i * size:(i + 1) * size])
        await asyncio.sleep(rng.uniform(1.0, 4.0))  # let them get some way into it
        victims = pair if i % 3 == 2 else [rng.choice(pair)]
        for w in victims:
            w.kill()
            kills += 1
        await asyncio.sleep(rng.uniform(0.0, 1.0))
        for w in victims:
            w.start()
    assert kills >= chunks
    await wait_for_facts(stats_settings, await end_offsets(stats_settings, list(topics.values())), pair,
                         patience=300)

    conn = await asyncpg.connect(stats_settings.dsn())
    try:
        facts = await conn.fetchval("SELECT count(*) FROM read_statistics.facts")
    finally:
        await conn.close()
    assert facts == len({e.id for e in stream.events})
    assert len(records) > facts  # duplicates were published, and none was counted twice

    expected = stream.expected()
    cases = (await stats.get("/v1/kpis/cases", params={"group_by": "community"}, headers=token())).json()
    got = {g["label"]: g for g in cases["groups"]}
    for community in COMMUNITIES:
        assert {k: got[community][k] for k in CASE_FIGURES} == {k: expected["cases"][community][k] for k in CASE_FIGURES}
    complaints = (await stats.get("/v1/kpis/complaints", params={"group_by": "community"}, headers=token())).json()
    got = {g["label"]: g for g in complaints["groups"]}
    for community in COMMUNITIES:
        assert ({k: got[community][k] for k in COMPLAINT_FIGURES}
                == {k: expected["complaints"][community][k] for k in COMPLAINT_FIGURES})
    for w in pair:
        w.stop()
