from django.apps import AppConfig


class RotationConfig(AppConfig):
    name = "rotation"
    verbose_name = "Password rotation"

    def ready(self) -> None:
        from rotation import importing, signals  # noqa: F401  (signals: gateway start-up hook)

        importing.install()
