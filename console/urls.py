from django.urls import path

from console import views

app_name = "console"

urlpatterns = [
    path("", views.home, name="home"),
    path("bills/<int:bill_id>/", views.bill_page, name="bill"),
]
