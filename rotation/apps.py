from django.apps import AppConfig


class RotationConfig(AppConfig):
    name = "rotation"
    verbose_name = "Password rotation"

    def ready(self) -> None:
        from rotation import checks, importing, signals, taskguard  # noqa: F401  (registered on import)

        importing.install()
        taskguard.install()  # only the vault's task functions run on gateways
