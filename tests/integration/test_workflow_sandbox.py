"""Every workflow passes the default workflow sandbox's checks.

The worker runs workflows without the sandbox (`commerce_sync.worker.workflow_runner`),
which skips the import checks the default sandbox makes; building a worker with the
default sandbox still makes them: each workflow's module is imported in a fresh sandbox,
which refuses I/O libraries (a workflow module that imported httpx fails here). The
calls a workflow module makes are checked in tests/unit/test_workflow_determinism.py.
"""

from __future__ import annotations

import uuid

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from commerce_sync.worker import WORKFLOWS


async def test_every_workflow_passes_the_default_sandbox_checks(temporal_client: Client) -> None:
    Worker(
        temporal_client,
        task_queue=f"sandbox-check-{uuid.uuid4()}",
        workflows=WORKFLOWS,
        workflow_runner=SandboxedWorkflowRunner(),
    )
