"""setup_telemetry end to end, in a child process (it sets process-wide tracing and logging)."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap

from civicgrid_common.settings import PlatformSettings
from civicgrid_common.telemetry import PersonalDataSpanProcessor, make_tracer_provider

RESIDENT_ID = "11010519491231002X"
CALLER_TRACE, CALLER_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
CALLER = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"  # a W3C traceparent from the caller

CHILD = textwrap.dedent(f"""
    import asyncio, json
    import httpx
    from opentelemetry import trace
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from civicgrid_common.settings import PlatformSettings
    from civicgrid_common.telemetry import setup_telemetry
    from civicgrid_common.web.app import create_app

    settings = PlatformSettings(service_name="intake")
    app = create_app(settings, title="intake", version="0", idempotency=False)

    @app.get("/boom")
    async def boom():
        raise LookupError("no household for {RESIDENT_ID}")

    @app.get("/cases/{{case_id}}")
    async def case(case_id: str):
        return {{"case": case_id}}

    first = setup_telemetry(settings)
    assert setup_telemetry(settings) is first  # idempotent
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    spans = InMemorySpanExporter()
    first.add_span_processor(SimpleSpanProcessor(spans))

    async def main():
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            await client.get("/cases/C-1", params={{"phone": "13812345678", "page": "2"}},
                             headers={{"traceparent": "{CALLER}"}})
            await client.get("/healthz")
            return (await client.get("/boom")).json()

    problem = asyncio.run(main())
    print(json.dumps({{
        "spans": [{{"name": s.name, "kind": s.kind.name, "trace_id": format(s.context.trace_id, "032x"),
                   "parent": format(s.parent.span_id, "016x") if s.parent else None,
                   "route": s.attributes.get("http.route"), "status": s.attributes.get("http.response.status_code"),
                   "query": s.attributes.get("url.query")}}
                  for s in spans.get_finished_spans() if s.kind.name == "SERVER"],
        "problem": problem,
        "service_name": trace.get_tracer_provider().resource.attributes["service.name"],
        "asyncpg_instrumented": AsyncPGInstrumentor().is_instrumented_by_opentelemetry,
    }}))
""")


def test_a_500_logs_json_with_the_trace_id_the_client_was_given_and_no_personal_data() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["service_name"] == "intake"
    assert report["asyncpg_instrumented"] is True
    trace_id = report["problem"]["trace_id"]
    assert len(trace_id) == 32 and int(trace_id, 16) != 0
    assert RESIDENT_ID not in done.stderr
    logged = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    errors = [line for line in logged if line["logger"] == "civicgrid.web" and line["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["trace_id"] == trace_id and errors[0]["service"] == "intake"
    assert "LookupError: no household for [resident-id]" in errors[0]["exc_info"]


def test_each_request_is_one_server_span_named_by_its_route_in_the_callers_trace() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    case, boom = report["spans"]  # /healthz is not traced
    assert case == {"name": "GET /cases/{case_id}", "kind": "SERVER", "trace_id": CALLER_TRACE,
                    "parent": CALLER_SPAN, "route": "/cases/{case_id}", "status": 200,
                    "query": "phone=[mobile]&page=2"}  # what a tracing backend receives: no mobile number
    assert boom["name"] == "GET /boom" and boom["status"] == 500 and boom["parent"] is None
    assert boom["trace_id"] == report["problem"]["trace_id"]


def test_spans_go_to_the_otlp_collector_only_when_one_is_configured() -> None:
    quiet = make_tracer_provider(PlatformSettings(service_name="grid"))
    exporting = make_tracer_provider(PlatformSettings(service_name="grid", otlp_endpoint="http://collector:4318/"))
    try:
        assert quiet.resource.attributes["service.name"] == "grid"
        # the redaction first, so that an exporter reads redacted spans; no exporter without a collector
        (redacting,) = quiet._active_span_processor._span_processors  # noqa: SLF001 - nothing else to observe
        assert isinstance(redacting, PersonalDataSpanProcessor)
        first, processor = exporting._active_span_processor._span_processors  # noqa: SLF001
        assert isinstance(first, PersonalDataSpanProcessor)
        assert processor._batch_processor._exporter._endpoint == "http://collector:4318/v1/traces"  # noqa: SLF001
    finally:
        quiet.shutdown()
        exporting.shutdown()


SERVED = textwrap.dedent("""
    import asyncio, logging, sys
    import httpx
    from civicgrid_common.settings import PlatformSettings
    from civicgrid_common.telemetry import setup_telemetry
    from civicgrid_common.web.app import create_app, uvicorn_config
    import uvicorn

    settings = PlatformSettings(service_name="intake", http_port=int(sys.argv[1]))
    app = create_app(settings, title="intake", version="0", idempotency=False)

    @app.get("/applicants")
    async def find(phone: str):
        logging.getLogger("civicgrid.intake").info("looking up %s", phone)
        return {"found": 0}

    setup_telemetry(settings)
    server = uvicorn.Server(uvicorn_config(app, settings))

    async def main():
        task = asyncio.create_task(server.serve())
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://127.0.0.1:{settings.http_port}/applicants", params={"phone": "13812345678"})
            assert r.status_code == 200, r.text
        server.should_exit = True
        await task

    asyncio.run(main())
""")


def test_a_served_service_logs_access_lines_as_redacted_json() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run([sys.executable, "-c", SERVED, str(port)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "13812345678" not in done.stderr
    logged = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]  # every line is JSON
    access = [line for line in logged if line["logger"] == "uvicorn.access"]
    assert len(access) == 1 and "/applicants?phone=[mobile]" in access[0]["message"]
    (lookup,) = [line for line in logged if line["logger"] == "civicgrid.intake"]
    assert lookup["message"] == "looking up [mobile]" and lookup["trace_id"]
