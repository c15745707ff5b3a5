"""The Litestar application: plugins, controllers, OpenAPI, problem details, lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.logging import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.security.jwt import JWTAuth

from inspection import __doc__ as package_doc
from inspection.access.principal import Principal
from inspection.actions.controllers import ActionController, FindingActionController
from inspection.audit.controllers import AuditController
from inspection.db.engine import create_database, create_reports_database
from inspection.discipline.controllers import DisciplineController, FindingDisciplineController
from inspection.evidence.controllers import (
    ActionEvidenceController,
    EvidenceController,
    FindingEvidenceController,
)
from inspection.evidence.direct import DirectUploadController
from inspection.evidence.uploads import UploadController
from inspection.findings.controllers import FindingController, SyncController
from inspection.kit.moments import system_now
from inspection.notifications.controllers import NotificationController
from inspection.plans.controllers import ChecklistController, PlanController, VisitController
from inspection.reports.controllers import ReportController
from inspection.settings import Settings, load_settings
from inspection.storage import ObjectStore
from inspection.storage.factory import create_object_store
from inspection.units.auth import ALGORITHM, ISSUER, retrieve_principal
from inspection.units.controllers import (
    AuthController,
    MeController,
    UnitController,
    UserController,
)
from inspection.units.passwords import configure_hashing
from inspection.web.dependencies import dependencies
from inspection.web.health import HealthController
from inspection.web.http import (
    HeaderGuard,
    IncomingTextMiddleware,
    InspectionRequest,
    JSONBodyMiddleware,
    OriginGuard,
    document_problems,
)
from inspection.web.problems import exception_handlers

log = logging.getLogger("inspection")
API_VERSION = "1.0.0"
EXPOSED_HEADERS = (
    "ETag",
    "Location",
    "Retry-After",
    "Idempotent-Replayed",
    "Evidence-Location",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Metadata",
    "Upload-Expires",
)


def create_app(
    settings: Settings | None = None,
    object_store: ObjectStore | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Litestar:
    """Assemble the service. Back-ends are opened in the lifespan, not here, so that importing
    or building the app never touches the network."""
    settings = settings or load_settings()
    configure_hashing(settings.argon2_memory_kib)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        database = create_database(settings)
        # Reports read through an engine of their own (a replica, when one is configured).
        reports_database = create_reports_database(settings)
        store = object_store or create_object_store(settings)
        app.state.database = database
        app.state.reports_database = reports_database
        app.state.object_store = store
        app.state.settings = settings
        # What "now" is: the system clock, or a test's (deadlines, escalation, notifications).
        app.state.clock = clock or system_now
        try:
            await store.ensure_ready()
            app.state.store_ready = True
        except Exception as exc:  # start anyway; /health/ready stays red and retries
            app.state.store_ready = False
            log.error("object store not ready at start: %s", exc)
        try:
            yield
        finally:
            await store.close()
            await reports_database.dispose()
            await database.dispose()

    jwt_auth = JWTAuth[Principal](
        retrieve_user_handler=retrieve_principal,
        token_secret=settings.secret_key,
        algorithm=ALGORITHM,
        accepted_issuers=[ISSUER],
        exclude=["^/schema", "^/health"],
        # HEAD must be authenticated too: tus clients resume with HEAD on an upload they own.
        exclude_http_methods=["OPTIONS"],
        default_token_expiration=timedelta(seconds=settings.access_token_ttl_seconds),
        description="Bearer token from POST /api/v1/auth/token.",
    )
    openapi = OpenAPIConfig(
        title="Inspection API",
        version=API_VERSION,
        description=(package_doc or "").strip()
        + " Errors are RFC 9457 problem details (application/problem+json).",
        path="/schema",
        render_plugins=[SwaggerRenderPlugin()],
        components=Components(
            security_schemes={
                "BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
            }
        ),
    )
    controllers = [
        HealthController,
        AuthController,
        MeController,
        UnitController,
        UserController,
        AuditController,
        ChecklistController,
        PlanController,
        VisitController,
        FindingController,
        SyncController,
        FindingEvidenceController,
        ActionEvidenceController,
        DirectUploadController,
        EvidenceController,
        UploadController,
        FindingActionController,
        ActionController,
        NotificationController,
        FindingDisciplineController,
        DisciplineController,
        ReportController,
    ]
    document_problems(controllers)
    cors = (
        CORSConfig(
            allow_origins=list(settings.cors_origins),
            allow_headers=["*"],
            allow_methods=["*"],
            # Browser clients (tus-js-client) must read these from cross-origin answers.
            expose_headers=list(EXPOSED_HEADERS),
        )
        if settings.cors_origins
        else None
    )
    app = Litestar(
        route_handlers=controllers,
        dependencies=dependencies,
        exception_handlers=exception_handlers,
        on_app_init=[jwt_auth.on_app_init],
        # Runs after authentication (jwt_auth inserts its middleware first): 401 before any 415.
        middleware=[JSONBodyMiddleware(), IncomingTextMiddleware()],
        # JSON and CSV bodies pass the depth limit and the text rule once (inspection.web.http).
        request_class=InspectionRequest,
        lifespan=[lifespan],
        openapi_config=openapi,
        cors_config=cors,
        logging_config=LoggingConfig(
            root={"level": settings.log_level, "handlers": ["queue_listener"]},
            log_exceptions="never",  # problems.py logs what deserves it, without duplicates
        ),
        request_max_body_size=settings.max_json_body_mb * 1024 * 1024,
        debug=False,
    )
    if cors is not None:
        # Litestar's CORS middleware wraps the router outside the exception handlers and
        # answers refusals in text/plain; the guard in front of it answers them as problems.
        app.asgi_handler = OriginGuard(app.asgi_handler, cors)
    # Outermost: header fields too many or too large (431), a malformed Content-Length (400),
    # refused before routing, authentication or CORS read any of them.
    app.asgi_handler = HeaderGuard(app.asgi_handler)
    return app
