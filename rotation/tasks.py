"""django-q2 entry points: ids in, a service call, nothing secret out."""

from rotation import connection, engine, gateways


def run_rotation(rotation_id: int) -> str:
    return engine.rotation_run(rotation_id=rotation_id)


def drain_gateway(gateway_name: str) -> int:
    return gateways.gateway_drain(gateway_name=gateway_name)


def gateway_tick(gateway_name: str) -> dict:
    return gateways.gateway_tick(gateway_name=gateway_name)


def test_configuration(connection_test_id: int) -> str:
    """Test connection of a configuration, on its gateway; returns the test's status."""
    return connection.connection_test_run(test_id=connection_test_id)


# pytest would collect a module-level function named test_* from a test's namespace.
test_configuration.__test__ = False  # type: ignore[attr-defined]
