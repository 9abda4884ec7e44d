"""The test world: two tenants and the people in them.

- **alice**: tenant A, tenant administrator for all sites;
- **bob**: tenant A, cashier for all sites;
- **carol**: tenant A, every role but only for site A2 (the site-grant cases);
- **mallory**: tenant B, tenant administrator for all sites.

Objects are made through the same services the API calls, as the system principal.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import (
    Bill,
    BillingSettings,
    BillRun,
    CommonArea,
    FlaggedBill,
    OpeningBalance,
    PrepaidCharge,
    Tariff,
    TariffAssignment,
)
from billing.runs import services as bills
from billing.runs.numbers import BillNumbers, payment_reference
from billing.tariffs import services as tariff_services
from collection.models import (
    CashApproval,
    CashHandover,
    Payment,
    PaymentAttempt,
    Receipt,
    Shift,
    VoucherBatch,
    VoucherCard,
)
from collection.services import vouchers
from collection.services.attempts import report_rejected_payment
from collection.services.cash_rules import grant_cash_approval
from collection.services.payments import post_payment
from collection.services.shifts import close_shift, hand_over_cash, open_shift, open_shift_of
from customers import services as customer_services
from customers.identifiers import identity_check_char
from customers.models import Account, Contact, Customer, Premise
from ledger.models import JournalEntry, LedgerAccount
from ledger.services import customer_ledger_accounts, post_entry, tenant_ledger_account
from metering import services as metering_services
from metering.models import Gateway, Meter, MeterCommand, MeterEvent, Reading
from tenancy import services as tenancy_services
from tenancy.context import use_tenant
from tenancy.models import ApiClient, Site, Tenant, TransformerArea, User
from tenancy.money import tax_part
from tenancy.principal import Principal
from tenancy.roles import Role
from verification import services as billing_services
from verification.models import LineLoss, PeriodConsumption, ReadingCorrection, VerificationItem
from verification.periods import period_bounds
from verification.rules import validate_readings

PASSWORD = "Correct-horse-battery-9"
_serial = count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_serial)}"


def identity_number(serial: int | None = None) -> str:
    serial = next(_serial) if serial is None else serial
    born = date(1950, 1, 1) + timedelta(days=serial // 1000)
    first17 = f"110105{born:%Y%m%d}{serial % 1000:03d}"
    return first17 + identity_check_char(first17)


def bank_closed_day() -> date:
    """A Saturday ahead (no calendar of the test world makes it a working day)."""
    day = date.today() + timedelta(days=7)
    return day + timedelta(days=(5 - day.weekday()) % 7)


def mobile_number() -> str:
    return f"139{next(_serial) % 100000000:08d}"


@dataclass
class TenantWorld:
    tenant: Tenant
    sites: list[Site]
    system: Principal
    users: dict[str, User] = field(default_factory=dict)

    @contextmanager
    def active(self) -> Iterator[TenantWorld]:
        with use_tenant(self.tenant):
            yield self

    # --- object makers (the caller need not set the tenant) -----------------------------

    def site(self, **fields: Any) -> Site:
        with self.active():
            return tenancy_services.create_site(
                self.system, code=unique("S"), name=fields.pop("name", "站点"), **fields
            )

    def transformer_area(self, site: Site | None = None) -> TransformerArea:
        with self.active():
            return tenancy_services.create_transformer_area(
                self.system, site=site or self.sites[0], code=unique("T"), name="台区"
            )

    def calendar_day(self, day: date | None = None, kind: str = "holiday") -> Any:
        with self.active():
            return tenancy_services.create_calendar_day(
                self.system,
                date=day or date(2030, 1, 1 + next(_serial) % 28),
                kind=kind,
                name="假日",
            )

    def customer(self, site: Site | None = None, **fields: Any) -> Customer:
        with self.active():
            fields.setdefault("kind", "person")
            fields.setdefault("name", "张三")
            fields.setdefault("id_number", identity_number())
            return customer_services.register_customer(
                self.system, site=site or self.sites[0], **fields
            )

    def premise(self, site: Site | None = None, **fields: Any) -> Premise:
        with self.active():
            fields.setdefault("address", "幸福路 1 号")
            fields.setdefault("room", unique("R"))
            fields.setdefault("floor_area", Decimal("88.50"))
            return customer_services.create_premise(
                self.system, site=site or self.sites[0], **fields
            )

    def account(self, site: Site | None = None, **fields: Any) -> Account:
        site = site or self.sites[0]
        customer = fields.pop("customer", None) or self.customer(site)
        premise = fields.pop("premise", None) or self.premise(site)
        with self.active():
            fields.setdefault("payment_mode", "postpaid")
            fields.setdefault("customer_class", "residential")
            fields.setdefault("opened_on", date(2026, 1, 1))
            return customer_services.open_account(
                self.system, customer=customer, premise=premise, **fields
            )

    def contact(self, customer: Customer | None = None, **fields: Any) -> Contact:
        customer = customer or self.customer()
        with self.active():
            fields.setdefault("kind", "mobile")
            fields.setdefault("value", mobile_number())
            fields.setdefault("source", "counter")
            return customer_services.add_contact(self.system, customer=customer, **fields)

    def gateway(self, site: Site | None = None, **fields: Any) -> Gateway:
        with self.active():
            fields.setdefault("host", "127.0.0.1")
            fields.setdefault("port", 20000 + next(_serial) % 10000)
            return metering_services.create_gateway(
                self.system, site=site or self.sites[0], name=unique("GW"), **fields
            )

    def meter(self, site: Site | None = None, *, on_gateway: bool = True, **fields: Any) -> Meter:
        site = site or self.sites[0]
        gateway = self.gateway(site) if on_gateway and "gateway" not in fields else None
        with self.active():
            fields.setdefault("profile", "DDSY1352")
            fields.setdefault("serial_number", str(10_000_000 + next(_serial)))
            # Installed before any slot the tests read (readings from 2025 on).
            fields.setdefault("installed_on", date(2024, 1, 1))
            if gateway is not None:
                fields.setdefault("gateway", gateway)
                fields.setdefault("unit_id", 1)
            return metering_services.register_meter(self.system, site=site, **fields)

    def reading(self, meter: Meter | None = None, **values: Any) -> Reading:
        meter = meter or self.meter()
        taken_at = values.pop("taken_at", None) or datetime(2025, 1, 1, tzinfo=UTC) + timedelta(
            minutes=15 * next(_serial)
        )
        values.setdefault("total", Decimal("1000.50"))
        with self.active():
            return metering_services.record_manual_reading(self.system, meter, taken_at, values)

    def meter_event(self, site: Site | None = None) -> MeterEvent:
        meter = self.meter(site)
        with self.active():
            return MeterEvent.objects.create(
                tenant=self.tenant,
                site=meter.site,
                meter=meter,
                gateway=meter.gateway,
                kind="timeout",
                detail={"unit_id": meter.unit_id},
            )

    def suspect_item(self, site: Site | None = None) -> VerificationItem:
        """A meter whose fifth hourly reading went backwards, validated: one open item."""
        meter = self.meter(site)
        start = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=next(_serial) % 600)
        for hour, total in enumerate(["100", "101", "102", "103", "90"]):
            self.reading(meter, taken_at=start + timedelta(hours=hour), total=Decimal(total))
        with self.active():
            validate_readings(self.tenant, [meter.pk])
            return VerificationItem.objects.get(meter=meter)

    def correction(self, site: Site | None = None) -> ReadingCorrection:
        item = self.suspect_item(site)
        with self.active():
            return billing_services.edit_reading(
                self.system, item, {"total": Decimal("104")}, "digit misread"
            )

    def period(self, site: Site | None = None) -> PeriodConsumption:
        account = self.account(site)
        with self.active():
            return PeriodConsumption.objects.create(
                tenant=self.tenant,
                account=account,
                site=account.site,
                period="2025-10",
                starts_at=datetime(2025, 9, 1, tzinfo=UTC),
                ends_at=datetime(2025, 10, 1, tzinfo=UTC),
                status="computed",
                total=Decimal("123.45"),
            )

    def line_loss(self, site: Site | None = None) -> LineLoss:
        area = self.transformer_area(site)
        with self.active():
            return LineLoss.objects.create(
                tenant=self.tenant,
                transformer_area=area,
                site=area.site,
                period="2025-10",
                master_consumption=Decimal("1000"),
                customers_consumption=Decimal("900"),
                loss=Decimal("100"),
                loss_rate=Decimal("0.1000"),
                expected_rate=Decimal("0.0800"),
                flagged=True,
            )

    def command(self, site: Site | None = None) -> MeterCommand:
        meter = self.meter(site)
        with self.active():
            return metering_services.issue_command(
                self.system, meter, kind="relay_trip", reason="欠费停电"
            )

    # --- billing (issue 6) ---------------------------------------------------------------

    def tariff(self, price: str = "0.5000") -> Tariff:
        with self.active():
            tariff = tariff_services.create_tariff(
                self.system, code=unique("TAR"), name="居民电价", utility="electricity"
            )
            tariff_services.add_tariff_version(
                self.system,
                tariff,
                effective_from=date(2020, 1, 1),
                spec={"energy": {"kind": "flat", "price": price}},
            )
            return tariff

    def tariff_assignment(
        self, site: Site | None = None, opened_on: date = date(2026, 1, 1)
    ) -> TariffAssignment:
        account = self.account(site, opened_on=opened_on)
        tariff = self.tariff()
        with self.active():
            return tariff_services.assign_tariff(
                self.system, tariff, effective_from=date(2020, 1, 1), account=account
            )

    def common_area(self, site: Site | None = None) -> CommonArea:
        site = site or self.sites[0]
        members = [self.account(site) for _ in range(2)]
        shared = self.account(site)
        with self.active():
            return tariff_services.create_common_area(
                self.system, site=site, name="1号楼公摊", account=shared, method="equal",
                members=members,
            )  # fmt: skip

    def next_period(self) -> str:
        """A period no other call gave lately, and one that has ended (runs and computations
        of a period still to come are refused), and one the test tariffs (from 2020) price:
        months from 2020-02 to 2025-12, in turn."""
        n = 1 + next(_serial) % (6 * 12 - 1)
        return f"{2020 + n // 12:04d}-{n % 12 + 1:02d}"

    def billed_account(self, site: Site, period: str, total: str = "200") -> Account:
        """An account with its own tariff and a computed period, ready for a bill run: the
        period is its first (it opened that day), so no earlier period holds it back."""
        start, end = period_bounds(site, period)
        assignment = self.tariff_assignment(site, opened_on=start.date())
        assert assignment.account is not None
        PeriodConsumption.dangerously_unscoped.create(
            tenant=self.tenant, account=assignment.account, site=site, period=period,
            starts_at=start, ends_at=end, status="computed", total=Decimal(total),
        )  # fmt: skip
        return assignment.account

    def bill_run(self, site: Site | None = None, total: str = "200") -> BillRun:
        """A priced (drafted) run of one account, started by the system."""
        site = site or self.sites[0]
        period = self.next_period()
        self.billed_account(site, period, total)
        with self.active():
            run = bills.open_bill_run(self.system, site, period)
            return bills.price_bill_run(self.system, run.pk)

    def bill(self, site: Site | None = None, *, state: str = "issued") -> Bill:
        """An issued bill, or (``flagged``) a zero bill of an approved run waiting for review."""
        run = self.bill_run(site, total="0" if state == "flagged" else "200")
        if state in ("issued", "flagged"):  # a flagged draft stays a draft when its run issues
            approver = Principal.for_user(self.staff((Role.VERIFIER, None)))
            with self.active():
                bills.approve_bill_run(approver, run.pk)
        return Bill.dangerously_unscoped.get(run=run)

    def flagged_bill(self, site: Site | None = None) -> FlaggedBill:
        """A zero draft bill waiting for review."""
        bill = self.bill(site, state="flagged")
        return FlaggedBill.dangerously_unscoped.get(bill=bill)

    def ledger_account(self, site: Site | None = None) -> LedgerAccount:
        account = self.account(site)
        with self.active():
            ledger_id = customer_ledger_accounts(self.tenant, "receivable", [account.pk])
            return LedgerAccount.objects.get(pk=ledger_id[account.pk])

    def journal_entry(self, site: Site | None = None) -> JournalEntry:
        receivable = self.ledger_account(site)
        with self.active():
            revenue = tenant_ledger_account(self.tenant, "revenue", utility="electricity")
            return post_entry(
                self.system, source_type="test", source_id=unique("E"),
                lines=[(receivable, Decimal("10.00")), (revenue, Decimal("-10.00"))],
                site_id=receivable.site_id,
            )  # fmt: skip

    def opening_balance(self, site: Site | None = None) -> OpeningBalance:
        account = self.account(site)
        return OpeningBalance.dangerously_unscoped.create(
            tenant=self.tenant, account=account, site=account.site, arrears=Decimal("12.30"),
            tier_year=2026, tier_kwh=Decimal("150.000"), imported_by_label="test",
        )  # fmt: skip

    def prepaid_charge(self, site: Site | None = None) -> PrepaidCharge:
        account = self.account(site, payment_mode="prepaid")
        return PrepaidCharge.dangerously_unscoped.create(
            tenant=self.tenant, account=account, site=account.site,
            from_taken_at=datetime(2026, 9, 1, tzinfo=UTC),
            to_taken_at=datetime(2026, 9, 1, 1, tzinfo=UTC),
            opening={}, closing={}, consumption={"total": "1.000"}, lines=[],
            amount=Decimal("0.49"), tax=Decimal("0.06"),
        )  # fmt: skip

    # --- collection (issue 14) --------------------------------------------------------------

    def issued_bill(
        self,
        account: Account,
        total: str,
        due_date: date,
        *,
        period: str = "2026-09",
        customer_class: str | None = None,
    ) -> Bill:
        """An issued bill of ``total`` yuan (13 % VAT inside) due on ``due_date``, posted to
        the account's receivable as issuing posts a run's bills: Dr receivable, Cr revenue and
        VAT payable."""
        year, month = int(period[:4]), int(period[5:])
        gross = Decimal(total)
        tax = tax_part(gross, Decimal("0.13"))
        with self.active():
            [number] = BillNumbers(self.tenant).take(1)
            bill = Bill.objects.create(
                tenant=self.tenant, site_id=account.site_id, account=account, period=period,
                number=number, payment_reference=payment_reference(number, "bill"),
                utility=account.utility, starts_on=date(year, month, 1),
                ends_on=date(year, month, 28), total=gross, tax_total=tax,
                posting={"energy": [str(gross - tax), str(tax)]}, buyer_name="张三",
                tax_code="1100101020000000000", created_by_kind="system",
                created_by_label="test setup",
            )  # fmt: skip
            bills.issue_bills(
                self.system, self.tenant, BillingSettings.for_tenant(self.tenant), [bill]
            )
            Bill.objects.filter(pk=bill.pk).update(
                due_date=due_date, issue_date=due_date - timedelta(days=15)
            )
            return Bill.objects.get(pk=bill.pk)

    def credit_note(self, bill: Bill, issued_on: date) -> Bill:
        """An issued credit note reversing ``bill`` whole, dated ``issued_on``, posted as
        approving one posts it (Cr receivable, Dr revenue and VAT payable)."""
        negated = {c: [str(-Decimal(n)), str(-Decimal(t))] for c, (n, t) in bill.posting.items()}
        with self.active():
            [number] = BillNumbers(self.tenant).take(1)
            note = Bill.objects.create(
                tenant=self.tenant, site_id=bill.site_id, account_id=bill.account_id,
                period=bill.period, kind="credit_note", corrects=bill, number=number,
                utility=bill.utility, starts_on=bill.starts_on, ends_on=bill.ends_on,
                total=-bill.total, tax_total=-bill.tax_total,
                posting=negated,
                buyer_name=bill.buyer_name, tax_code=bill.tax_code, created_by_kind="system",
                created_by_label="test setup", reason="抄错",
            )  # fmt: skip
            bills.issue_bills(
                self.system, self.tenant, BillingSettings.for_tenant(self.tenant), [note]
            )
            Bill.objects.filter(pk=note.pk).update(issue_date=issued_on)
            return Bill.objects.get(pk=note.pk)

    def cashier(self, site: Site | None = None) -> Principal:
        """A new cashier (for all sites, or for ``site``), as the principal who acts."""
        return Principal.for_user(self.staff((Role.CASHIER, site)))

    def cashier_on_shift(self, site: Site | None = None) -> Principal:
        """A new cashier for all sites, with a shift open at ``site`` (the first site by
        default): the counter takes money only in a cashier's open shift."""
        cashier = self.cashier()
        self.on_shift(cashier, site or self.sites[0])
        return cashier

    def on_shift(self, cashier: Principal | User, site: Site, float_amount: str = "0.00") -> Shift:
        """The cashier's open shift at ``site``, opened with the float if there is none (a
        counter payment belongs to one)."""
        actor = cashier if isinstance(cashier, Principal) else Principal.for_user(cashier)
        with self.active():
            shift = open_shift_of(actor)
            if shift is None:
                shift = open_shift(actor, site=site, float_amount=Decimal(float_amount))
            assert shift.site_id == site.pk, "the cashier's open shift is at another site"
            return shift

    def payment(
        self,
        site: Site | None = None,
        *,
        account: Account | None = None,
        amount: str = "50.00",
        by: Principal | None = None,
    ) -> Payment:
        """A cash payment at the counter, taken by a cashier of its own (on a shift)."""
        account = account or self.account(site)
        cashier = by or self.cashier()
        self.on_shift(cashier, account.site)
        with self.active():
            return post_payment(
                cashier, account=account, channel="counter_cash", amount=Decimal(amount),
                idempotency_key=unique("key-"),
            ).payment  # fmt: skip

    def cashier_principal(self, user: User) -> Principal:
        return Principal.for_user(user)

    def shift(self, site: Site | None = None, *, by: Principal | None = None) -> Shift:
        """An open shift with a float of 100.00, of a cashier of its own."""
        return self.on_shift(by or self.cashier(), site or self.sites[0], "100.00")

    def pending_shift(self, site: Site | None = None) -> Shift:
        """A shift closed 5.00 short: its difference waits for a supervisor."""
        cashier = self.cashier()
        shift = self.shift(site, by=cashier)
        with self.active():
            return close_shift(
                cashier, shift, counted_cash=Decimal("95.00"), counted_card=Decimal("0.00")
            )

    def cash_on_hand(self, cashier: Principal, site: Site, amount: str = "300.00") -> Shift:
        """The cashier's shift at ``site`` with a cash payment of ``amount``, closed with the
        cash counted as expected: ``amount`` is then on hand to go to the bank."""
        shift = self.on_shift(cashier, site)
        self.payment(account=self.account(site), amount=amount, by=cashier)
        with self.active():
            return close_shift(
                cashier,
                shift,
                counted_cash=shift.float_amount + Decimal(amount),
                counted_card=Decimal("0.00"),
            )

    def handover(self, site: Site | None = None) -> CashHandover:
        site = site or self.sites[0]
        cashier = self.cashier()
        self.cash_on_hand(cashier, site)
        assert cashier.user is not None
        with self.active():
            handover, _created = hand_over_cash(
                cashier, cashier=cashier.user, site=site, amount=Decimal("300.00"),
                bank="icbc", slip_reference=unique("SLIP-"), handed_on=self.tenant.local_today(),
            )  # fmt: skip
            return handover

    def cash_approval(self, site: Site | None = None, day: date | None = None) -> CashApproval:
        """A supervisor's approval of a 3,000.00 cash top-up on a day the bank is closed."""
        site = site or self.sites[0]
        account = self.account(site, payment_mode="prepaid")
        cashier = self.staff((Role.CASHIER, site))
        with self.active():
            return grant_cash_approval(
                self.system, account=account, cashier=cashier, amount=Decimal("3000.00"),
                business_day=day or bank_closed_day(), reason="节假日预付费充值",
            )  # fmt: skip

    def receipt(self, site: Site | None = None) -> Receipt:
        payment = self.payment(site)
        with self.active():
            return Receipt.objects.get(payment=payment)

    def payment_attempt(self, site: Site | None = None) -> PaymentAttempt:
        """A card declined at the counter, as the cashier reports it."""
        account = self.account(site)
        with self.active():
            return report_rejected_payment(
                self.cashier(), account=account, channel="counter_card", amount=Decimal("80.00"),
                reason="卡被拒绝",
            )  # fmt: skip

    def deposit_policy(self, customer_class: str = "commercial") -> Any:
        from collection.services.deposits import set_deposit_policy

        with self.active():
            return set_deposit_policy(
                self.system, utility="electricity", customer_class=customer_class,
                amount=Decimal("2000.00"),
            )  # fmt: skip

    def deposit(self, site: Site | None = None, amount: str = "500.00") -> Any:
        """A cash deposit taken at the counter by a cashier of its own."""
        from collection.services.deposits import take_deposit

        account = self.account(site)
        cashier = self.cashier_on_shift(account.site)
        with self.active():
            return take_deposit(
                cashier, account=account, channel="counter_cash", amount=Decimal(amount),
                idempotency_key=unique("dep-"),
            ).deposit  # fmt: skip

    def refund(
        self, site: Site | None = None, *, state: str = "requested", channel: str = "cash"
    ) -> Any:
        """A refund of 100.00 of deposit, requested by a cashier (approved by finance when
        ``state`` is approved), paid out in cash or by ``bank_transfer``."""
        from collection.services.refunds import approve_refund, request_refund

        deposit = self.deposit(site)
        payee = "6222000011112222" if channel == "bank_transfer" else ""
        with self.active():
            refund = request_refund(
                self.cashier(), account=deposit.account, from_deposit=Decimal("100.00"),
                channel=channel, reason="押金多收", payee_bank_account=payee,
            )  # fmt: skip
            if state == "approved":
                finance = Principal.for_user(self.staff((Role.HQ_FINANCE, None)))
                refund = approve_refund(finance, refund)
            return refund

    def account_closing(self, site: Site | None = None) -> Any:
        """A closing started and waiting (its account has no bill nor tariff to bill it)."""
        from collection.models import AccountClosing

        account = self.account(site)
        meter = self.meter(site or self.sites[0], on_gateway=False, account=account)
        reading = self.reading(meter, total=Decimal("10.00"))
        return AccountClosing.dangerously_unscoped.create(
            tenant=self.tenant, site=account.site, account=account, reason="迁出",
            state="started", final_reading=reading, final_taken_at=reading.taken_at,
            actor_kind="system", actor_label="test setup",
        )  # fmt: skip

    def voucher_batch(
        self,
        site: Site | None = None,
        *,
        by: Principal | None = None,
        release: bool = True,
        pins_downloaded: bool | None = None,
    ) -> VoucherBatch:
        """Two recharge cards of 50.00, generated by ``by`` or the system, their PIN file
        downloaded (by default when released: a batch is released only after that) and
        released."""
        by = by or self.system
        with self.active():
            batch = vouchers.generate_batch(
                by, face_value=Decimal("50.00"), count=2,
                expires_on=timezone.localdate() + timedelta(days=365),
            )  # fmt: skip
            if release if pins_downloaded is None else pins_downloaded:
                vouchers.download_pins(by, batch)
            return vouchers.release_batch(by, batch) if release else batch

    def voucher_card(self, site: Site | None = None) -> VoucherCard:
        """A released recharge card, its PIN kept on the object (``card.pin``) to redeem it."""
        with self.active():
            batch = vouchers.generate_batch(
                self.system, face_value=Decimal("50.00"), count=1,
                expires_on=timezone.localdate() + timedelta(days=365),
            )  # fmt: skip
            row = vouchers.download_pins(self.system, batch).content.splitlines()[1]
            serial, pin = (part.replace(" ", "") for part in row.split(",")[1:3])
            vouchers.release_batch(self.system, batch)
            card = VoucherCard.objects.get(serial=serial)
            card.pin = pin  # type: ignore[attr-defined]  # for the test that redeems it
            return card

    def voucher_payment(self, site: Site | None = None) -> Payment:
        """A recharge card redeemed onto a new account by a cashier of its own."""
        card = self.voucher_card()
        account = self.account(site)
        with self.active():
            return vouchers.redeem_card(
                self.cashier(), account=account, serial=card.serial,
                pin=card.pin,  # type: ignore[attr-defined]  # kept by voucher_card
                idempotency_key=unique("v-"),
            ).payment  # fmt: skip

    def staff(self, *grants: tuple[str, Site | None], username: str | None = None) -> User:
        with self.active():
            return tenancy_services.create_staff(
                self.system,
                username=username or unique("user"),
                password=PASSWORD,
                grants=[tenancy_services.GrantSpec(role, site) for role, site in grants],
                display_name=username or "",
            )

    def api_client(self, *grants: tuple[str, Site | None]) -> tuple[ApiClient, str]:
        with self.active():
            return tenancy_services.issue_api_client(
                self.system,
                name=unique("client"),
                grants=[tenancy_services.GrantSpec(role, site) for role, site in grants],
            )


def make_tenant_world(name: str, slug: str, site_count: int = 2) -> TenantWorld:
    tenant = Tenant.objects.create(name=name, slug=slug)
    world = TenantWorld(tenant=tenant, sites=[], system=Principal.system(tenant, "test setup"))
    world.sites = [world.site(name=f"{name} site {i + 1}") for i in range(site_count)]
    return world


@dataclass
class World:
    a: TenantWorld
    b: TenantWorld
    alice: User
    bob: User
    carol: User
    mallory: User

    def client_for(self, user: User) -> APIClient:
        client = APIClient()
        client.force_login(user)
        return client


def build_world() -> World:
    a = make_tenant_world("Tenant A", "tenant-a")
    b = make_tenant_world("Tenant B", "tenant-b", site_count=1)
    alice = a.staff((Role.TENANT_ADMIN, None), username="alice")
    bob = a.staff((Role.CASHIER, None), username="bob")
    carol = a.staff(*[(role, a.sites[1]) for role in Role.values], username="carol")
    mallory = b.staff((Role.TENANT_ADMIN, None), username="mallory")
    return World(a=a, b=b, alice=alice, bob=bob, carol=carol, mallory=mallory)
