"""A site's February 2025 (period 2025-03, the reading day being the 1st) with the work of named
staff in it: a meter reader's readings entered by hand, a verifier's approval of a suspect
reading, a verifier's approval of another's correction, and a verifier's approved bill run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from billing.models import Bill
from inspection.models import InspectionSample
from inspection.services import draw_sample
from metering import services as metering
from metering.models import Meter, Reading
from tenancy.models import Site, User
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import TenantWorld, World
from verification import services as verification
from verification.models import ReadingCorrection, VerificationItem
from verification.rules import validate_readings

PERIOD = "2025-03"
FEBRUARY = datetime(2025, 2, 10, tzinfo=UTC)


@dataclass
class Scene:
    world: World
    site: Site
    reader: User
    verifier: User
    second_verifier: User
    inspector: User
    entered: list[Reading] = field(default_factory=list)
    approved: Reading | None = None
    corrected: Reading | None = None
    correction: ReadingCorrection | None = None

    @property
    def a(self) -> TenantWorld:
        return self.world.a

    def as_(self, user: User) -> Principal:
        return Principal.for_user(user)

    def suspect(self, start: datetime) -> VerificationItem:
        """A meter whose fifth hourly reading went backwards, validated: one open item."""
        meter = self.a.meter(self.site)
        for hour, total in enumerate(["100", "101", "102", "103", "90"]):
            self.a.reading(meter, taken_at=start + timedelta(hours=hour), total=Decimal(total))
        with self.a.active():
            validate_readings(self.a.tenant, [meter.pk])
            return VerificationItem.objects.get(meter=meter)

    def enter_readings(self, count: int, meter: Meter | None = None) -> list[Reading]:
        meter = meter or self.a.meter(self.site)
        with self.a.active():
            readings = [
                metering.record_manual_reading(
                    self.as_(self.reader),
                    meter,
                    FEBRUARY + timedelta(hours=number),
                    {"total": Decimal(100 + number)},
                )
                for number in range(count)
            ]
        self.entered.extend(readings)
        return readings

    def approve_suspect(self) -> Reading:
        item = self.suspect(FEBRUARY + timedelta(days=2))
        with self.a.active():
            verification.approve_readings(self.as_(self.verifier), [item])
        self.approved = item.reading
        return item.reading

    def correct_suspect(self) -> ReadingCorrection:
        item = self.suspect(FEBRUARY + timedelta(days=4))
        with self.a.active():
            correction = verification.edit_reading(
                self.as_(self.verifier), item, {"total": Decimal("104")}, "digit misread"
            )
            verification.approve_correction(self.as_(self.second_verifier), correction)
        self.corrected = item.reading
        self.correction = correction
        return correction

    def issued_bill(self) -> Bill:
        return self.a.bill(self.site)

    def draw(self, **options: object) -> InspectionSample:
        options.setdefault("readings", 10)
        options.setdefault("bills", 0)
        with self.a.active():
            return draw_sample(self.as_(self.inspector), self.site, PERIOD, **options)  # type: ignore[arg-type]


def build_scene(world: World) -> Scene:
    site = world.a.sites[0]
    return Scene(
        world=world,
        site=site,
        reader=world.a.staff((Role.METER_READER, site), username="reader"),
        verifier=world.a.staff((Role.VERIFIER, None), username="verifier"),
        second_verifier=world.a.staff((Role.VERIFIER, None), username="verifier2"),
        inspector=world.a.staff((Role.INSPECTOR, None), username="inspector"),
    )
