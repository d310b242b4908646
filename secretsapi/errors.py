"""The secrets API's errors in AWS's shape: an error code (the JSON body's `__type`, which
botocore turns into `client.exceptions.<code>`), a message, and the HTTP status AWS uses."""

from __future__ import annotations

# Codes of Secrets Manager's model (botocore raises them as client.exceptions.<code>) and of
# AWS's common errors (raised as ClientError with that code).
NOT_FOUND = "ResourceNotFoundException"
INVALID_PARAMETER = "InvalidParameterException"
INVALID_REQUEST = "InvalidRequestException"
INVALID_NEXT_TOKEN = "InvalidNextTokenException"
INTERNAL = "InternalServiceError"
UNRECOGNIZED_CLIENT = "UnrecognizedClientException"
ACCESS_DENIED = "AccessDeniedException"
THROTTLING = "ThrottlingException"
SERIALIZATION = "SerializationException"
UNKNOWN_OPERATION = "UnknownOperationException"


class ApiError(Exception):
    """A refusal answered as `{"__type": code, "message": message}` with `status`."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
