"""Which systems are stores and which are ERPs, and how to build their ports."""

from __future__ import annotations

import importlib
from typing import cast

from commerce_sync.config.settings import Settings
from commerce_sync.systems.ports import ErpPort, StorePort

STORES = ("kentico", "xcart")
ERPS = ("brightpearl", "acumatica")


def create_store_port(system: str, settings: Settings) -> StorePort:
    module = importlib.import_module(f"commerce_sync.systems.{system}.port")
    return cast(StorePort, module.create_store_port(settings))


def create_erp_port(system: str, settings: Settings) -> ErpPort:
    module = importlib.import_module(f"commerce_sync.systems.{system}.port")
    return cast(ErpPort, module.create_erp_port(settings))
