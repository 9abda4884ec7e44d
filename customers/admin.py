from django.contrib import admin

from customers.models import Account, Contact, Customer, Premise
from tenancy.admin import UnscopedAdmin


@admin.register(Customer)
class CustomerAdmin(UnscopedAdmin):
    list_display = ["name", "kind", "site", "tenant", "created_at"]
    list_filter = ["tenant", "kind"]
    exclude = ["id_number"]


@admin.register(Account)
class AccountAdmin(UnscopedAdmin):
    list_display = ["number", "customer", "site", "payment_mode", "customer_class", "status"]
    list_filter = ["tenant", "status", "payment_mode", "customer_class"]
    search_fields = ["number"]


@admin.register(Premise)
class PremiseAdmin(UnscopedAdmin):
    list_display = ["address", "building", "unit", "room", "site"]
    list_filter = ["tenant"]


@admin.register(Contact)
class ContactAdmin(UnscopedAdmin):
    list_display = ["customer", "kind", "source", "last_confirmed_at", "sms_consent"]
    list_filter = ["tenant", "kind"]
    exclude = ["value"]
