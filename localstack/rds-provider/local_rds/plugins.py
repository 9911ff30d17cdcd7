"""Plux entry points: the `rds:default` provider and the control routes on the gateway."""

from localstack.runtime import hooks
from localstack.services.plugins import Service, aws_provider


@aws_provider(api="rds")
def rds():
    from local_rds.provider import LocalRdsProvider, state

    provider = LocalRdsProvider(state())
    return Service.for_provider(provider, dispatch_table_factory=lambda p: p.dispatch_table())


@hooks.on_infra_start()
def register_routes():
    # Registered at startup (services load lazily) so a test can set faults before its first
    # RDS call.
    from local_rds.control import register
    from local_rds.secrets import patch_secretsmanager

    register()
    patch_secretsmanager()
