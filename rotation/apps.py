from django.apps import AppConfig


class RotationConfig(AppConfig):
    name = "rotation"
    verbose_name = "Password rotation"

    def ready(self) -> None:
        from rotation import signals  # noqa: F401  (connects the gateway start-up hook)
