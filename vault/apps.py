from django.apps import AppConfig


class VaultConfig(AppConfig):
    name = "vault"
    verbose_name = "Vault"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from vault import checks, security  # noqa: F401  (signal receivers and system checks)
        from vault.timezones import load_time_zone_on_sign_in

        security.connect()
        user_logged_in.connect(load_time_zone_on_sign_in, dispatch_uid="vault.time_zone")
