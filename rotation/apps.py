from django.apps import AppConfig


class RotationConfig(AppConfig):
    name = "rotation"
    verbose_name = "Password rotation"

    def ready(self) -> None:
        from rotation import checks, importing, signals  # noqa: F401  (registered on import)

        importing.install()
