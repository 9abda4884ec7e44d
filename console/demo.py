"""The demo tenant: two sites, staff of every role, customers with accounts and contacts.

Everything is keyed by natural keys (tenant slug, site code, user name, identity number,
account number), so seeding again updates in place instead of duplicating. Writes go through
the same services as the API, as the system principal ``seed_demo``, so the demo's audit trail
looks like a real one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.models import Tariff
from billing.tariffs import services as tariff_services
from billing.tariffs.examples import BEIJING_RESIDENTIAL, TOU_COMMERCIAL, two_part_industrial
from collection.models import DepositPolicy, VoucherBatch
from collection.services import vouchers
from collection.services.deposits import set_deposit_policy
from collection.services.shifts import open_shift, open_shift_of
from console.demo_history import seed_history
from customers import services as customer_services
from customers.identifiers import (
    credit_code_check_char,
    identity_check_char,
    make_account_number,
)
from customers.models import (
    Account,
    Contact,
    ContactKind,
    ContactSource,
    Customer,
    CustomerClass,
    CustomerKind,
    PaymentMode,
    Premise,
)
from gateway_bridge.simulator import simulated_serial
from metering import services as metering_services
from metering.models import Gateway, Meter
from tenancy import services as tenancy_services
from tenancy.calendar import HOLIDAYS_2026, MAKEUP_WORKDAYS_2026
from tenancy.context import use_tenant
from tenancy.fields import search_hash
from tenancy.models import (
    ApiClient,
    CalendarDay,
    CalendarDayKind,
    Site,
    Tenant,
    TransformerArea,
    User,
)
from tenancy.principal import Principal
from tenancy.roles import Role

DEMO_SLUG = "demo"
DEMO_SIM_BASE_PORT = 15020
# The simulator the demo starts: two gateways (one per site) of six meters each, dealt these
# profiles by unit id. seed_demo registers the same layout.
DEMO_SIM_METERS = 6
DEMO_SIM_PROFILES = ["DDSY1352", "DDSY1352", "DDSY1352", "DDSY1352", "DTSY1352", "DTSY1352"]
DEMO_READING_MINUTES = 1
DEMO_PASSWORD = "Demo@2026!bars"  # noqa: S105 (printed for the demo)


# The State Council's 2026 holiday arrangement (国务院办公厅 2026 年部分节假日安排).
@dataclass(frozen=True)
class DemoStaff:
    username: str
    display_name: str  # the person's name only: pages and ledger names add the role
    role: str
    site_code: str | None  # None: all sites


DEMO_STAFF = [
    DemoStaff("demo-admin", "王敏", Role.TENANT_ADMIN, None),
    DemoStaff("demo-hq", "陈静", Role.HQ_FINANCE, None),
    DemoStaff("demo-manager", "刘洋", Role.SITE_MANAGER, "S01"),
    DemoStaff("demo-reader", "赵磊", Role.METER_READER, "S01"),
    DemoStaff("demo-verifier", "孙丽", Role.VERIFIER, None),
    DemoStaff("demo-cashier", "周强", Role.CASHIER, "S01"),
    DemoStaff("demo-collector", "吴刚", Role.COLLECTOR, None),
    DemoStaff("demo-inspector", "郑华", Role.INSPECTOR, None),
]


@dataclass(frozen=True)
class DemoAccount:
    customer_name: str
    kind: str
    id_base: str  # 17 characters; the check character is computed
    site_code: str
    area_code: str
    address: str
    building: str
    unit: str
    room: str
    floor_area: str
    payment_mode: str
    customer_class: str
    mobile: str
    household_size: int = 1
    minimum_living_support: bool = False
    contracted_capacity_kva: str | None = None


DEMO_ACCOUNTS = [
    DemoAccount(
        "张伟",
        CustomerKind.PERSON,
        "11010519800101123",
        "S01",
        "S01-T1",
        "阳光花园",
        "1栋",
        "2单元",
        "301",
        "89.50",
        PaymentMode.POSTPAID,
        CustomerClass.RESIDENTIAL,
        "13812345678",
        household_size=3,
    ),
    DemoAccount(
        "李娜",
        CustomerKind.PERSON,
        "31011519850615224",
        "S01",
        "S01-T1",
        "阳光花园",
        "1栋",
        "1单元",
        "502",
        "120.00",
        PaymentMode.POSTPAID,
        CustomerClass.RESIDENTIAL,
        "13987654321",
        household_size=6,
    ),
    DemoAccount(
        "王芳",
        CustomerKind.PERSON,
        "44030619700312346",
        "S01",
        "S01-T2",
        "阳光花园",
        "3栋",
        "1单元",
        "101",
        "65.20",
        PaymentMode.PREPAID,
        CustomerClass.RESIDENTIAL,
        "15011112222",
        minimum_living_support=True,
    ),
    DemoAccount(
        "阳光便利店",
        CustomerKind.ORGANISATION,
        "92110105MA01ABCD1",
        "S01",
        "S01-T2",
        "阳光花园",
        "商业街",
        "",
        "A-03",
        "45.00",
        PaymentMode.PREPAID,
        CustomerClass.COMMERCIAL,
        "18600001111",
    ),
    DemoAccount(
        "滨江精密制造有限公司",
        CustomerKind.ORGANISATION,
        "91320100MA1XYW789",
        "S02",
        "S02-T1",
        "滨江产业园",
        "5号厂房",
        "",
        "",
        "3200.00",
        PaymentMode.POSTPAID,
        CustomerClass.INDUSTRIAL,
        "13305556666",
        contracted_capacity_kva="630.0",
    ),
]


def _id_number(spec: DemoAccount) -> str:
    if spec.kind == CustomerKind.ORGANISATION:
        return spec.id_base + credit_code_check_char(spec.id_base)
    return spec.id_base + identity_check_char(spec.id_base)


@dataclass
class SeedResult:
    tenant: Tenant
    staff: list[DemoStaff]
    password: str
    accounts: list[str]
    api_token: str


def seed_demo(password: str = DEMO_PASSWORD, sim_base_port: int = DEMO_SIM_BASE_PORT) -> SeedResult:
    with transaction.atomic():
        tenant, _created = Tenant.objects.get_or_create(
            slug=DEMO_SLUG,
            defaults={"name": "示范能源服务有限公司", "payment_term_days": 15},
        )
        if tenant.reading_interval_minutes != DEMO_READING_MINUTES:
            tenant.reading_interval_minutes = DEMO_READING_MINUTES  # read every minute
            tenant.save(update_fields=["reading_interval_minutes"])
        with use_tenant(tenant):
            system = Principal.system(tenant, "seed_demo")
            sites = _seed_sites(system)
            _seed_calendar(system)
            _seed_staff(system, sites, password)
            numbers = _seed_customers(system, sites)
            _seed_metering(system, sites, sim_base_port)
            token = _seed_api_client(system)
            _seed_tariffs(system)
            _seed_cashier_shift(sites)
            _seed_deposit_policies(system)
            seed_history(system, sim_base_port, DEMO_SIM_METERS, DEMO_SIM_PROFILES)
            _seed_vouchers()
    return SeedResult(tenant, DEMO_STAFF, password, numbers, token)


DEMO_TARIFFS = [
    ("RES-2026", "居民阶梯电价", "residential", BEIJING_RESIDENTIAL),
    ("COM-TOU", "工商业分时电价", "commercial", {**TOU_COMMERCIAL, "fixed_monthly_fee": "10"}),
    (
        "IND-2P",
        "大工业两部制电价",
        "industrial",
        two_part_industrial(f"2026-{month:02d}" for month in range(1, 13)),
    ),
]


DEMO_VOUCHER_NOTE = "演示批次"


def _seed_vouchers() -> None:
    """A batch of 20 recharge cards of 50.00 yuan, generated by demo-admin, whose PIN file
    waits for demo-admin to download it (once) on the batch's page and release the batch for
    sale (a batch is released only once its PINs are out); demo-cashier then redeems a card at
    the counter. Seeded once."""
    if VoucherBatch.objects.filter(note=DEMO_VOUCHER_NOTE).exists():
        return
    admin = Principal.for_user(User.objects.get(username="demo-admin"))
    vouchers.generate_batch(
        admin, face_value=Decimal("50.00"), count=20,
        expires_on=timezone.localdate() + timedelta(days=365), note=DEMO_VOUCHER_NOTE,
    )  # fmt: skip


def _seed_tariffs(system: Principal) -> None:
    """The demo's tariffs, one per customer class, from 2026."""
    for code, name, customer_class, spec in DEMO_TARIFFS:
        if Tariff.objects.filter(code=code).exists():
            continue
        tariff = tariff_services.create_tariff(system, code=code, name=name, utility="electricity")
        tariff_services.add_tariff_version(
            system, tariff, effective_from=date(2026, 1, 1), spec=spec
        )
        tariff_services.assign_tariff(
            system, tariff, effective_from=date(2026, 1, 1), customer_class=customer_class
        )


# Deposits (押金) the demo's policy asks of non-residential electricity accounts, in yuan.
DEMO_DEPOSITS = [("commercial", Decimal("2000.00")), ("industrial", Decimal("5000.00"))]


def _seed_deposit_policies(system: Principal) -> None:
    """The demo's deposit policy: non-residential electricity accounts need a deposit."""
    for customer_class, amount in DEMO_DEPOSITS:
        if not DepositPolicy.objects.filter(customer_class=customer_class).exists():
            set_deposit_policy(
                system, utility="electricity", customer_class=customer_class, amount=amount,
                note="示范押金政策",
            )  # fmt: skip


def _seed_sites(system: Principal) -> dict[str, Site]:
    site_specs = [
        ("S01", "阳光花园小区", "滨湖路 88 号", 25),
        ("S02", "滨江产业园", "江滨大道 1 号", 1),
    ]
    sites = {}
    for code, name, address, reading_day in site_specs:
        site = Site.objects.filter(code=code).first()
        if site is None:
            site = tenancy_services.create_site(
                system, code=code, name=name, address=address, reading_day=reading_day
            )
        sites[code] = site
    area_specs = [
        ("S01-T1", "阳光花园1号台区", "S01", "630"),
        ("S01-T2", "阳光花园2号台区", "S01", "400"),
        ("S02-T1", "滨江产业园专变", "S02", "1250"),
    ]
    for code, name, site_code, capacity in area_specs:
        if not TransformerArea.objects.filter(code=code).exists():
            tenancy_services.create_transformer_area(
                system, site=sites[site_code], code=code, name=name, capacity_kva=Decimal(capacity)
            )
    return sites


def _seed_calendar(system: Principal) -> None:
    days = [
        (day, CalendarDayKind.HOLIDAY, name)
        for name, dates in HOLIDAYS_2026.items()
        for day in dates
    ] + [
        (day, CalendarDayKind.WORKDAY, name)
        for name, dates in MAKEUP_WORKDAYS_2026.items()
        for day in dates
    ]
    existing = set(CalendarDay.objects.values_list("date", flat=True))
    for day, kind, name in days:
        if date.fromisoformat(day) not in existing:
            tenancy_services.create_calendar_day(
                system, date=date.fromisoformat(day), kind=kind, name=name
            )


def _seed_staff(system: Principal, sites: dict[str, Site], password: str) -> None:
    for spec in DEMO_STAFF:
        grants = [
            tenancy_services.GrantSpec(
                role=spec.role, site=sites[spec.site_code] if spec.site_code else None
            )
        ]
        user = User.objects.filter(username=spec.username).first()
        if user is None:
            tenancy_services.create_staff(
                system,
                username=spec.username,
                password=password,
                grants=grants,
                display_name=spec.display_name,
            )
        else:
            tenancy_services.update_staff(
                system,
                user,
                {"is_active": True, "grants": grants, "display_name": spec.display_name},
            )
            if not user.check_password(password):
                tenancy_services.set_staff_password(system, user, password)


def _seed_cashier_shift(sites: dict[str, Site]) -> None:
    """demo-cashier's shift at S01, open with a float of 500.00, so the counter takes payments
    at once (a counter payment belongs to an open shift)."""
    cashier = Principal.for_user(User.objects.get(username="demo-cashier"))
    if open_shift_of(cashier) is None:
        open_shift(cashier, site=sites["S01"], float_amount=Decimal("500.00"))


def _seed_customers(system: Principal, sites: dict[str, Site]) -> list[str]:
    areas = {area.code: area for area in TransformerArea.objects.all()}
    numbers = []
    for index, spec in enumerate(DEMO_ACCOUNTS, start=1):
        id_number = _id_number(spec)
        customer = Customer.objects.filter(id_number_hash=search_hash(id_number)).first()
        if customer is None:
            customer = customer_services.register_customer(
                system,
                site=sites[spec.site_code],
                kind=spec.kind,
                name=spec.customer_name,
                id_number=id_number,
            )
        number = make_account_number(index)
        numbers.append(number)
        if Account.objects.filter(number=number).exists():
            continue
        premise = Premise.objects.filter(
            site=sites[spec.site_code],
            address=spec.address,
            building=spec.building,
            unit=spec.unit,
            room=spec.room,
        ).first() or customer_services.create_premise(
            system,
            site=sites[spec.site_code],
            transformer_area=areas[spec.area_code],
            address=spec.address,
            building=spec.building,
            unit=spec.unit,
            room=spec.room,
            floor_area=Decimal(spec.floor_area),
        )
        customer_services.open_account(
            system,
            number=number,
            customer=customer,
            premise=premise,
            payment_mode=spec.payment_mode,
            customer_class=spec.customer_class,
            opened_on=date(2026, 1, 1),
            household_size=spec.household_size,
            minimum_living_support=spec.minimum_living_support,
            contracted_capacity_kva=(
                Decimal(spec.contracted_capacity_kva) if spec.contracted_capacity_kva else None
            ),
        )
        if not Contact.objects.filter(customer=customer).exists():
            customer_services.add_contact(
                system,
                customer=customer,
                kind=ContactKind.MOBILE,
                value=spec.mobile,
                source=ContactSource.COUNTER,
                sms_consent=True,
                is_primary=True,
            )
    return numbers


def _seed_metering(system: Principal, sites: dict[str, Site], base_port: int) -> None:
    """Gateways and meters matching the simulator the demo starts: on S01's gateway the four
    S01 accounts at units 1-4 and the masters of its two transformer areas at units 5-6; on
    S02's the industrial account at unit 5 and its area's master at unit 6."""
    accounts = {account.number: account for account in Account.objects.all()}
    areas = {area.code: area for area in TransformerArea.objects.all()}
    layout = {
        ("S01", 0): {
            1: make_account_number(1),
            2: make_account_number(2),
            3: make_account_number(3),
            4: make_account_number(4),
            5: "S01-T1",
            6: "S01-T2",
        },
        ("S02", 1): {5: make_account_number(5), 6: "S02-T1"},
    }
    for (site_code, index), units in layout.items():
        port = base_port + index
        gateway = Gateway.objects.filter(name=f"{site_code}-GW1").first()
        if gateway is None:
            gateway = metering_services.create_gateway(
                system, site=sites[site_code], name=f"{site_code}-GW1", host="127.0.0.1", port=port
            )
        elif gateway.port != port:
            gateway = metering_services.update_gateway(system, gateway, {"port": port})
        for unit_id, target in units.items():
            serial = str(simulated_serial(port, unit_id))
            meter = Meter.objects.filter(gateway=gateway, unit_id=unit_id).first()
            if meter is not None:
                if meter.serial_number != serial:
                    metering_services.update_meter(system, meter, {"serial_number": serial})
                continue
            fields = (
                {"account": accounts[target]}
                if target in accounts
                else {"master_of": areas[target]}
            )
            metering_services.register_meter(
                system,
                site=sites[site_code],
                serial_number=serial,
                profile=DEMO_SIM_PROFILES[(unit_id - 1) % len(DEMO_SIM_PROFILES)],
                gateway=gateway,
                unit_id=unit_id,
                installed_on=date(2026, 1, 1),
                **fields,
            )


def _seed_api_client(system: Principal) -> str:
    """A demo integration holding the cashier role for all sites; its token is re-issued on
    every seed (only a hash is stored, so the old one cannot be shown again)."""
    client = ApiClient.objects.filter(name="demo-integration").first()
    if client is None:
        _client, token = tenancy_services.issue_api_client(
            system,
            name="demo-integration",
            grants=[tenancy_services.GrantSpec(role=Role.CASHIER)],
        )
        return token
    return tenancy_services.rotate_api_client_token(system, client)
