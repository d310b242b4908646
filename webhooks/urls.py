"""The webhook pages: a folder's (its managers') and the global ones (superusers')."""

from django.urls import path

from webhooks import views

urlpatterns = [
    path("folders/<str:uid>/webhooks/", views.folder_webhooks, name="folder_webhooks"),
    path("folders/<str:uid>/webhooks/add/", views.folder_webhook_add, name="folder_webhook_add"),
    path("webhooks/", views.global_webhooks, name="global_webhooks"),
    path("webhooks/add/", views.global_webhook_add, name="global_webhook_add"),
    path("webhooks/<str:webhook_uid>/", views.webhook_detail, name="webhook_detail"),
    path("webhooks/<str:webhook_uid>/enabled/", views.webhook_enabled, name="webhook_enabled"),
    path("webhooks/<str:webhook_uid>/delete/", views.webhook_delete, name="webhook_delete"),
    path(
        "webhooks/<str:webhook_uid>/deliveries/<str:delivery_uid>/redeliver/",
        views.webhook_redeliver,
        name="webhook_redeliver",
    ),
]
