"""The console's pages, one module per area; each has ``urlpatterns`` and ``NAV``."""
