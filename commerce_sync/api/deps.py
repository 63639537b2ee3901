"""What routes depend on, as `Annotated` dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Engine
from temporalio.client import Client

from commerce_sync.config.settings import Settings
from commerce_sync.intake.links import DatabaseLink, TemporalLink


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_database_link(request: Request) -> DatabaseLink:
    link: DatabaseLink = request.app.state.database
    return link


def get_temporal_link(request: Request) -> TemporalLink:
    link: TemporalLink = request.app.state.temporal
    return link


def get_temporal_client(link: Annotated[TemporalLink, Depends(get_temporal_link)]) -> Client:
    if link.client is None:
        raise HTTPException(status_code=503, detail=f"Temporal unreachable: {link.last_error}")
    return link.client


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
DatabaseLinkDep = Annotated[DatabaseLink, Depends(get_database_link)]
TemporalLinkDep = Annotated[TemporalLink, Depends(get_temporal_link)]
TemporalDep = Annotated[Client, Depends(get_temporal_client)]
