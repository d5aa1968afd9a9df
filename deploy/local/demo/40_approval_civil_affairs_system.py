"""The civil affairs department's system (民政业务系统), as the demo plays it: it reads its tasks
from civicgrid.departments.civil_affairs.tasks and answers each one with an opinion on its own
topic, civicgrid.departments.civil_affairs.opinions, under its own CloudEvents source. A real
department system would check the household's income against the low-income register
(居民家庭经济状况核对); this one agrees with every household of the demo.

As a demo part, `run` starts it in the background for the parts after it (49_* stops it); the
end-to-end test uses `CivilAffairsSystem` directly. Each run listens from the end of the topic
(a group of its own, `latest`): it answers the tasks issued while it runs, never an earlier run's
task that was answered long ago (that late opinion would be refused and dead-lettered).
"""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timezone

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from civicgrid_common.cloudevents import dataschema_for, from_kafka_message
from civicgrid_common.settings import PlatformSettings

DEPARTMENT = "civil_affairs"
TASKS = f"civicgrid.departments.{DEPARTMENT}.tasks"
OPINIONS = f"civicgrid.departments.{DEPARTMENT}.opinions"
TASK_TYPE = f"civicgrid.approval.{DEPARTMENT}_task.issued.v1"
OPINION_TYPE = f"civicgrid.department.{DEPARTMENT}.opinion_given.v1"
SOURCE = f"/civicgrid/departments/{DEPARTMENT}"


def opinion_record(task: dict, *, opinion: str = "approve", comment: str | None = None,
                   schema_base_url: str = PlatformSettings.model_fields["schema_base_url"].default,
                   ) -> tuple[bytes, bytes, list]:
    """The CloudEvents (Kafka binary mode) record answering one task: key, value, headers."""
    data = {
        "approval_id": task["approval_id"], "task": task["task"], "opinion": opinion,
        "comment": comment or "经居民家庭经济状况核对，家庭人均收入低于本市最低生活保障标准",
        "given_at": datetime.now(timezone.utc).isoformat(), "checked_by": "区居民家庭经济状况核对中心",
    }
    now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    headers = [("ce_specversion", b"1.0"), ("ce_id", str(uuid.uuid4()).encode()), ("ce_source", SOURCE.encode()),
               ("ce_type", OPINION_TYPE.encode()), ("ce_subject", task["approval_id"].encode()),
               ("ce_time", now.encode()), ("ce_dataschema", dataschema_for(OPINION_TYPE, schema_base_url).encode()),
               ("content-type", b"application/json")]
    return task["approval_id"].encode(), json.dumps(data, ensure_ascii=False).encode(), headers


class CivilAffairsSystem:
    def __init__(self, settings: PlatformSettings, *, group_id: str = "civil-affairs-system-demo",
                 say=print) -> None:
        self.settings = settings
        self.group_id = f"{group_id}-{uuid.uuid4().hex[:8]}"
        self.say = say
        self.answered: list[dict] = []
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(TASKS, bootstrap_servers=self.settings.kafka_bootstrap, group_id=self.group_id,
                                    auto_offset_reset="latest", enable_auto_commit=False)
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap, acks="all")
        await consumer.start()
        await producer.start()
        try:
            while not self._stop.is_set():
                batch = await consumer.getmany(timeout_ms=300)
                if consumer.assignment() and not self._ready.is_set():
                    # Fix the starting position (the end, now) before anyone issues a task.
                    for partition in consumer.assignment():
                        await consumer.position(partition)
                    self._ready.set()
                for records in batch.values():
                    for r in records:
                        event = from_kafka_message(r.headers, r.key, r.value)
                        if event.type != TASK_TYPE:
                            continue
                        key, value, headers = opinion_record(event.data,
                                                             schema_base_url=self.settings.schema_base_url)
                        await producer.send_and_wait(OPINIONS, value, key=key, headers=headers)
                        self.answered.append(event.data)
                        self.say(f"  民政系统 answered task {event.data['task']} of case {event.data['case_number']}")
                if batch:
                    await consumer.commit()
        finally:
            await consumer.stop()
            await producer.stop()

    async def wait_ready(self, timeout: float = 60) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    def stop(self) -> None:
        self._stop.set()


async def run(ctx) -> None:
    system = CivilAffairsSystem(ctx.settings, say=ctx.say)
    task = asyncio.create_task(system.run(), name="civil-affairs-system")
    await system.wait_ready()
    ctx.facts["civil_affairs_system"] = (system, task)
    ctx.say("the civil affairs system listens on civicgrid.departments.civil_affairs.tasks and answers on "
            "civicgrid.departments.civil_affairs.opinions")
