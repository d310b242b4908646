"""The AWS Secrets Manager-compatible API through which applications read rotated credentials
(issue 15): client credentials per application, SigV4 verification, the JSON 1.1 endpoint."""

from django.apps import AppConfig


class SecretsApiConfig(AppConfig):
    name = "secretsapi"
    verbose_name = "Secrets API"
