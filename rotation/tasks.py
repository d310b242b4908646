"""django-q2 entry points: ids in, a service call, nothing secret out."""

from rotation import services


def run_rotation(rotation_id: int) -> str:
    return services.rotation_run(rotation_id=rotation_id)


def drain_gateway(gateway_name: str) -> int:
    return services.rotation_drain(gateway_name=gateway_name)


def gateway_tick(gateway_name: str) -> dict:
    return services.gateway_tick(gateway_name=gateway_name)
