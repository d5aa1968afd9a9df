"""The platform part of the demo: what is running, and what is on the event log so far."""
from __future__ import annotations

import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from civicgrid_common.paths import project_root


async def run(ctx) -> None:
    manifest = yaml.safe_load((project_root() / "deploy/local/services.yaml").read_text())
    for svc in manifest["services"]:
        url = f"http://127.0.0.1:{svc['port']}/readyz"
        try:
            r = await ctx.http.get(url)
            state = "ready" if r.status_code == 200 else f"not ready ({r.status_code})"
        except Exception:
            state = "not running (no service folder yet)" if not (project_root() / "services" / svc["name"]).exists() else "not running"
        ctx.say(f"  {svc['name']:<14}:{svc['port']}  {state}")
    consumer = AIOKafkaConsumer(bootstrap_servers=ctx.settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        topics = sorted(t for t in await consumer.topics() if not t.startswith("__"))
        await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public call for it
        ctx.say("  topics on the broker (events kept):")
        for topic in topics:
            parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            ends = await consumer.end_offsets(parts)
            begins = await consumer.beginning_offsets(parts)
            total = sum(ends[p] - begins[p] for p in parts)
            ctx.say(f"    {topic:<40} {len(parts)} partitions, {total} events")
    finally:
        await consumer.stop()
