"""The urban management department's system (数字城管业务系统), as the demo plays it: it reads the
tasks grid issues when the street's grid centre dispatches an incident to urban management
(civicgrid.departments.urban_management.tasks: what to do and where, never who reported it),
sends a crew, uploads the crew's photo of the work done through grid's API and answers each task
with a result on its own topic, civicgrid.departments.urban_management.results, under its own
CloudEvents source (/civicgrid/departments/urban_management). Grid takes the result as the
handler's feedback (反馈).

As a demo part, `run` starts it in the background for the parts after it (59_* stops it). Like
the civil affairs system (part 40) it listens from the end of the topic in a group of its own:
it answers the tasks issued while it runs, never an earlier run's.
"""
from __future__ import annotations

import asyncio
import io
import json
import os
import uuid
from datetime import datetime, timezone

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from PIL import Image, ImageDraw

from civicgrid_common.cloudevents import dataschema_for, from_kafka_message
from civicgrid_common.identity.tokens import mint_local_token
from civicgrid_common.settings import PlatformSettings

GRID = os.environ.get("CIVICGRID_DEMO_GRID_URL", "http://127.0.0.1:8003")
DEPARTMENT = "urban_management"
TASKS = f"civicgrid.departments.{DEPARTMENT}.tasks"
RESULTS = f"civicgrid.departments.{DEPARTMENT}.results"
TASK_TYPE = f"civicgrid.grid.{DEPARTMENT}_task.issued.v1"
RESULT_TYPE = f"civicgrid.department.{DEPARTMENT}.incident_handled.v1"
SOURCE = f"/civicgrid/departments/{DEPARTMENT}"
CREW = "um-qinhuai-crew-03"  # the department's own reference of who handled it


def crew_photo() -> bytes:
    """The crew's photo of the new cover (a drawing will do), as a JPEG."""
    image = Image.new("RGB", (96, 72), (90, 90, 90))
    ImageDraw.Draw(image).ellipse((18, 6, 78, 66), fill=(40, 40, 40), outline=(200, 200, 200))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def result_record(task: dict, *, result: str, photos: list[str],
                  schema_base_url: str = PlatformSettings.model_fields["schema_base_url"].default,
                  ) -> tuple[bytes, bytes, list]:
    """The CloudEvents (Kafka binary mode) record answering one task: key, value, headers."""
    now = datetime.now(timezone.utc)
    data = {"incident_id": task["incident_id"], "task_at": task["at"], "result": result, "handled_by": CREW,
            "handled_at": now.isoformat(), "photos": photos}
    headers = [("ce_specversion", b"1.0"), ("ce_id", str(uuid.uuid4()).encode()), ("ce_source", SOURCE.encode()),
               ("ce_type", RESULT_TYPE.encode()), ("ce_subject", task["incident_id"].encode()),
               ("ce_time", now.isoformat().replace("+00:00", "Z").encode()),
               ("ce_dataschema", dataschema_for(RESULT_TYPE, schema_base_url).encode()),
               ("content-type", b"application/json")]
    return task["incident_id"].encode(), json.dumps(data, ensure_ascii=False).encode(), headers


class UrbanManagementSystem:
    def __init__(self, settings: PlatformSettings, http: httpx.AsyncClient, *,
                 group_id: str = "urban-management-system-demo", say=print) -> None:
        self.settings = settings
        self.http = http
        self.group_id = f"{group_id}-{uuid.uuid4().hex[:8]}"
        self.say = say
        self.tasks: list[dict] = []
        self.answered: list[dict] = []
        self._token = mint_local_token("department", "320104", department=DEPARTMENT, subject="um-system",
                                       name="区城管数字化系统")
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()

    async def upload(self, grid: str) -> str:
        r = await self.http.post(f"{GRID}/v1/grids/{grid}/photos", content=crew_photo(),
                                 headers={"Authorization": f"Bearer {self._token}", "Content-Type": "image/jpeg"})
        r.raise_for_status()
        return r.json()["sha256"]

    async def answer(self, producer: AIOKafkaProducer, task: dict) -> None:
        self.tasks.append(task)
        if task.get("rework"):
            self.say(f"  城管系统 took rework task {task['rework']} for incident {task['incident_id']}: {task.get('note')}")
        else:
            self.say(f"  城管系统 took the task for incident {task['incident_id']} ({task['classification']['name_zh']}, "
                     f"grid {task['grid']}, due {task['handling_due']}); it names no reporter: {', '.join(sorted(task))}")
        photo = await self.upload(task["grid"])
        result = ("已重新加固井座并更换防沉降井盖 (frame re-set and bolted)" if task.get("rework")
                  else "已更换井盖并恢复路面 (cover replaced, surface made good)")
        key, value, headers = result_record(task, result=result, photos=[photo],
                                            schema_base_url=self.settings.schema_base_url)
        await producer.send_and_wait(RESULTS, value, key=key, headers=headers)
        self.answered.append(json.loads(value))
        self.say(f"  城管系统 answered on {RESULTS}: crew {CREW}, photo {photo[:12]}…")

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
                    for partition in consumer.assignment():  # fix the start (the end, now) first
                        await consumer.position(partition)
                    self._ready.set()
                for records in batch.values():
                    for r in records:
                        event = from_kafka_message(r.headers, r.key, r.value)
                        if event.type == TASK_TYPE:
                            await self.answer(producer, event.data)
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
    system = UrbanManagementSystem(ctx.settings, ctx.http, say=ctx.say)
    task = asyncio.create_task(system.run(), name="urban-management-system")
    await system.wait_ready()
    ctx.facts["urban_management_system"] = (system, task)
    ctx.say(f"the urban management system listens on {TASKS} and answers on {RESULTS}")
