"""Gateway start-up hook: when a django-q2 worker process starts, the gateway it serves says
it is alive and re-queues rotations whose lease ran out (a worker killed mid-rotation)."""

import logging

from django.dispatch import receiver
from django_q.signals import post_spawn

logger = logging.getLogger(__name__)


@receiver(post_spawn)
def gateway_started(sender, proc_name, **kwargs) -> None:
    from django_q.conf import Conf

    from rotation.gateways import gateway_tick

    try:
        gateway_tick(gateway_name=Conf.CLUSTER_NAME)
    except Exception:  # a start-up hook must never stop the worker from starting
        logger.exception("gateway start-up tick failed")
