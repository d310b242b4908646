"""The notifications page, under the account pages."""

from django.urls import path

from notifications import views

urlpatterns = [
    path("account/notifications/", views.notification_prefs, name="notification_prefs"),
]
