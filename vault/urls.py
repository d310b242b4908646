"""The vault's pages. The site's root URLconf is vault/root_urls.py, which includes these and
every other app's."""

from django.contrib import admin
from django.urls import include, path

from vault import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("account/", include("vault.account_urls")),
    path("admin/", admin.site.urls),
    path("folders/new/", views.folder_create, name="folder_create"),
    path("folders/<str:uid>/", views.folder_detail, name="folder_detail"),
    path("folders/<str:uid>/rename/", views.folder_rename, name="folder_rename"),
    path("folders/<str:uid>/delete/", views.folder_delete, name="folder_delete"),
    path("search/", views.search, name="search"),
    path("folders/<str:uid>/records/new/", views.record_create, name="record_create"),
    path(
        "folders/<str:uid>/configurations/new/",
        views.configuration_create,
        name="configuration_create",
    ),
    path("folders/<str:uid>/members/", views.members, name="members"),
    path("folders/<str:uid>/members/add/", views.member_add, name="member_add"),
    path("folders/<str:uid>/shares/", views.folder_share, name="folder_share"),
    path(
        "folders/<str:uid>/shares/<str:app_uid>/remove/",
        views.folder_unshare,
        name="folder_unshare",
    ),
    path(
        "folders/<str:uid>/members/<str:username>/update/",
        views.member_update,
        name="member_update",
    ),
    path(
        "folders/<str:uid>/members/<str:username>/remove/",
        views.member_remove,
        name="member_remove",
    ),
    path("records/<str:uid>/", views.record_detail, name="record_detail"),
    path("records/<str:uid>/reveal/", views.record_reveal, name="record_reveal"),
    path(
        "records/<str:uid>/reveal-access-key/",
        views.record_reveal_access_key,
        name="record_reveal_access_key",
    ),
    path(
        "records/<str:uid>/versions/<str:version_uid>/reveal/",
        views.version_reveal,
        name="version_reveal",
    ),
    path("records/<str:uid>/edit/", views.record_edit, name="record_edit"),
    path("records/<str:uid>/delete/", views.record_delete, name="record_delete"),
    path("configurations/<str:uid>/", views.configuration_detail, name="configuration_detail"),
    path("configurations/<str:uid>/edit/", views.configuration_edit, name="configuration_edit"),
    path(
        "configurations/<str:uid>/delete/",
        views.configuration_delete,
        name="configuration_delete",
    ),
]
