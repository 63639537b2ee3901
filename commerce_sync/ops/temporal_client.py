"""Connecting to Temporal: the embedded dev server, a cluster, or Temporal Cloud.

Every client uses `data_converter(settings)`: the pydantic data converter (canonical
models are payloads), plus the AES-GCM payload codec when codec keys are configured.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re

from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.exceptions import ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from commerce_sync.config.settings import Settings
from commerce_sync.ops.codec import payload_codec
from commerce_sync.ops.tracing import tracing_interceptor


def tls_config(settings: Settings) -> TLSConfig | bool:
    if settings.temporal_tls_cert or settings.temporal_tls_ca:
        return TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes()
            if settings.temporal_tls_cert
            else None,
            client_private_key=(
                settings.temporal_tls_key.read_bytes() if settings.temporal_tls_key else None
            ),
            server_root_ca_cert=settings.temporal_tls_ca.read_bytes()
            if settings.temporal_tls_ca
            else None,
        )
    # Temporal Cloud with an API key needs TLS without client certificates.
    return settings.temporal_api_key is not None


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime exporting the SDK's metrics to Prometheus, when configured."""
    address = settings.metrics.temporal_bind_address
    if address is None:
        return None
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))


def data_converter(settings: Settings) -> DataConverter:
    """The one data converter of every client, worker and replayer of this deployment.

    With the codec on, failure messages and stack traces move into an encoded attribute
    too: they may quote an order (an invalid email, an address the ERP refused)."""
    codec = payload_codec(settings)
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """A client with the tracing interceptor (workers built on it trace too)."""
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.resolved_temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        tls=tls_config(settings),
        api_key=api_key,
        interceptors=[tracing_interceptor()],
        runtime=runtime,
    )


CONNECT_TIMEOUT_S = 15.0
"""How long a command waits for Temporal to answer before it says so and exits."""


class TemporalUnreachable(Exception):
    """A command could not connect to Temporal: where, and the useful part of why."""

    def __init__(self, address: str, reason: str) -> None:
        self.address, self.reason = address, reason
        super().__init__(f"cannot reach Temporal at {address}: {reason}")


def connect_failure_reason(exc: BaseException) -> str:
    """The useful part of the SDK's connect error (`... message: "Connection refused" ...`)."""
    found = re.search(r'message: "([^"]+)"', str(exc))
    return found.group(1) if found else " ".join(str(exc).split()) or type(exc).__name__


async def connect_within(settings: Settings, timeout_s: float = CONNECT_TIMEOUT_S) -> Client:
    """`connect`, for a command a person waits on: TemporalUnreachable after `timeout_s`
    without an answer, or when the connection is refused."""
    address = settings.resolved_temporal_address
    try:
        return await asyncio.wait_for(connect(settings), timeout=timeout_s)
    except TimeoutError:
        raise TemporalUnreachable(address, f"no answer in {timeout_s:g} s") from None
    except (RuntimeError, OSError) as exc:
        raise TemporalUnreachable(address, connect_failure_reason(exc)) from None


def update_refusal(exc: BaseException) -> str:
    """A workflow's reason for refusing an update, without the Python exception's type
    (`ValueError: nothing waits ...` -> `nothing waits ...`)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, ApplicationError):
        prefix = f"{cause.type}: " if cause.type else ""
        message = cause.message
        return message[len(prefix) :] if prefix and message.startswith(prefix) else message
    return str(cause or exc)
