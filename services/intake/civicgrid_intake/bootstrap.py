"""intake's composition root: what the service is made of, wired in one fixed order.

    keyring (fail fast) → database → event store → read tables → units of work →
    calendar → catalogue → applicants → cases → complaints → what runs in the background

Nothing else constructs services or adapters; entry points ask for what they need from here.
"""
from __future__ import annotations

import asyncio

from civicgrid_common.calendar.overrides import install_calendar_schema, load_calendar
from civicgrid_common.calendar.sync import CalendarProjector, CalendarWatch
from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.db import create_pool, ensure_database
from civicgrid_common.eventstore import EventStore
from civicgrid_common.outbox.relay import OutboxRelay
from civicgrid_common.service import Runner, Wired
from civicgrid_common.unit_of_work import Transactions

from civicgrid_intake.adapters.applicant_store import ApplicantStore
from civicgrid_intake.adapters.case_views import CaseNumberCounter, CaseViewProjector, CaseViewReads, install_case_views
from civicgrid_intake.adapters.complaint_views import ComplaintViewProjector, install_complaint_views
from civicgrid_intake.adapters.personal_data import PersonalDataCipher, PersonalDataSettings, load_keyring
from civicgrid_intake.application.applicants import ApplicantService
from civicgrid_intake.application.calendar import CalendarService
from civicgrid_intake.application.cases import CaseService
from civicgrid_intake.application.catalogue import CatalogueService, demo_seed
from civicgrid_intake.application.complaints import ComplaintService
from civicgrid_intake.config import IntakeSettings
from civicgrid_intake.domain.identity_numbers import load_area_codes
from civicgrid_intake.entrypoints.consumers import approval_outcomes_consumer


async def bootstrap(settings: IntakeSettings, *, clock: Clock = utc_now) -> Wired:
    # Without its keyring intake must not touch the database: fail first.
    keyring = load_keyring(PersonalDataSettings(personal_data_keyring=settings.personal_data_keyring,
                                                environment=settings.environment))
    await ensure_database(settings)
    await asyncio.to_thread(load_area_codes)  # reference data read before serving, off the loop
    pool = await create_pool(settings)
    store = EventStore.for_service(pool, settings)
    await store.install()
    for install in (install_case_views, install_complaint_views, ApplicantStore.install, install_calendar_schema):
        await install(pool)
    transactions = Transactions.for_service(
        store, [CaseViewProjector(), ComplaintViewProjector(), CalendarProjector()], settings)

    # intake owns the district's calendar: its overrides are events every service applies.
    district_calendar = CalendarService(transactions, settings.district, clock=clock)
    await district_calendar.adopt_earlier_overrides()

    def calendar():
        return load_calendar(pool)

    catalogue = CatalogueService(transactions, settings.district, store.contracts.departments)
    if settings.seed_catalogue:
        await catalogue.seed_if_empty(demo_seed())
    applicants = ApplicantService(transactions, ApplicantStore(PersonalDataCipher(keyring)), keyring.pseudonym_key,
                                  clock=clock)
    cases = CaseService(transactions, catalogue, CaseViewReads(pool), CaseNumberCounter(), applicants,
                        calendar=calendar, clock=clock)
    complaints = ComplaintService(transactions, calendar=calendar, clock=clock,
                                  departments=store.contracts.departments)

    runners: list[Runner] = [CalendarWatch(pool)]
    if settings.outbox_relay:  # one relay per database publishes (an advisory lock); others wait
        runners.append(OutboxRelay(pool, settings, name="intake"))
    if settings.approval_consumer:  # approval's outcomes complete cases and ask for supplements
        runners.append(approval_outcomes_consumer(settings, pool, cases, transactions))
    return Wired(pool=pool, runners=runners, close=pool.close, state={
        "store": store, "transactions": transactions, "catalogue": catalogue, "applicants": applicants,
        "cases": cases, "complaints": complaints, "calendar": district_calendar,
    })
