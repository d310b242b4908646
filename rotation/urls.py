from django.urls import path

from rotation import discovery_views, views

urlpatterns = [
    path("records/<str:uid>/rotation/", views.rotation_settings, name="rotation_settings"),
    path("records/<str:uid>/rotate/", views.rotate, name="rotate"),
    path("records/<str:uid>/rotation/status/", views.rotation_status, name="rotation_status"),
    path(
        "records/<str:uid>/rotations/<str:rotation_uid>/resolve/",
        views.resolve,
        name="rotation_resolve",
    ),
    path(
        "records/<str:uid>/rotations/<str:rotation_uid>/cancel/",
        views.cancel,
        name="rotation_cancel",
    ),
    path(
        "records/<str:uid>/generate-password/",
        views.record_generate_password,
        name="record_generate_password",
    ),
    path(
        "folders/<str:uid>/generate-password/",
        views.folder_generate_password,
        name="folder_generate_password",
    ),
    path("configurations/<str:uid>/test/", views.configuration_test, name="configuration_test"),
    path(
        "configurations/<str:uid>/test/status/",
        views.configuration_test_status,
        name="configuration_test_status",
    ),
]
urlpatterns += [
    path("folders/<str:uid>/rotate-all/", views.rotate_all, name="rotate_all"),
    path(
        "folders/<str:uid>/rotate-all/<str:batch_uid>/",
        views.rotate_all_progress,
        name="rotate_all_progress",
    ),
    path(
        "folders/<str:uid>/rotate-all/<str:batch_uid>/status/",
        views.rotate_all_status,
        name="rotate_all_status",
    ),
    path("audit/", views.audit_log, name="audit"),
    path("audit/export.csv", views.audit_csv, name="audit_csv"),
    path("gateways/", views.gateways, name="gateways"),
]
# Discover IAM users (rotation/discovery_views.py).
urlpatterns += [
    path(
        "configurations/<str:uid>/discover/",
        discovery_views.discovery_start,
        name="discovery_start",
    ),
    path(
        "configurations/<str:uid>/discovery/",
        discovery_views.discovery_latest,
        name="discovery_latest",
    ),
    path(
        "configurations/<str:uid>/discovery/<str:job_uid>/",
        discovery_views.discovery_job,
        name="discovery_job",
    ),
    path(
        "configurations/<str:uid>/discovery/<str:job_uid>/status/",
        discovery_views.discovery_status,
        name="discovery_status",
    ),
    path(
        "configurations/<str:uid>/discovery/<str:job_uid>/import/",
        discovery_views.discovery_import,
        name="discovery_import",
    ),
]
