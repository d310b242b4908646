"""django-q2 entry points: ids in, a service call, nothing secret out."""

import logging

from rotation import connection, discovery, engine, gateways

logger = logging.getLogger(__name__)


def run_rotation(rotation_id: int) -> str:
    return engine.rotation_run(rotation_id=rotation_id)


def drain_gateway(gateway_name: str) -> int:
    return gateways.gateway_drain(gateway_name=gateway_name)


def gateway_tick(gateway_name: str) -> dict:
    summary = gateways.gateway_tick(gateway_name=gateway_name)
    try:  # discoveries whose lease ran out (killed worker, handed back after throttling)
        summary["discoveries_resumed"] = discovery.discovery_recover(gateway_name=gateway_name)
    except Exception:  # the heartbeat above stands whatever happens here
        logger.exception("resuming discoveries on %s failed", gateway_name)
        summary["discoveries_resumed"] = "failed"
    return summary


def run_discovery(discovery_job_id: int) -> str:
    """Discover IAM users of a configuration, on its gateway; returns the job's status."""
    return discovery.discovery_run(job_id=discovery_job_id)


def test_configuration(connection_test_id: int) -> str:
    """Test connection of a configuration, on its gateway; returns the test's status."""
    return connection.connection_test_run(test_id=connection_test_id)


# pytest would collect a module-level function named test_* from a test's namespace.
test_configuration.__test__ = False  # type: ignore[attr-defined]
