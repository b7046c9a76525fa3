"""``/metrics``: Prometheus metrics of the web application and of the RA's state.

Two kinds of figures:

- what the web workers count as they answer: requests by route, method and status, and
  their latency.  Under gunicorn every worker is its own process, so the counters are kept in
  prometheus-client's multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set (``shomei ra
  serve`` sets it to a fresh folder) and summed over the workers at each scrape;
- what the database says at the moment of the scrape (a collector, nothing cached): mails
  waiting in the outbox and those failing, applications by status (those waiting for the CA
  among them), and the seconds until the current CRL's nextUpdate, the figure to page someone
  on days before an offline CA's CRL runs out (docs/ra-operator-guide.md gives the alert
  rules).

Public like ``/healthz``: counts only, nothing personal; put it behind the proxy's access
rules if the federation's policy wants that.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ra.ca_link import publication
from ra.ca_link.identity import load_ca_certificate
from ra.lifecycle import Status
from ra.store.models import Application, JobOutcome, JobRun, OutboxMail
from ra.web import WebContext
from shomei.errors import ShomeiError

blueprint = Blueprint("metrics", __name__)

REQUESTS = Counter(
    "shomei_http_requests",
    "HTTP requests answered, by route, method and status",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "shomei_http_request_duration_seconds",
    "Time to answer an HTTP request, by route",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class StateCollector(Collector):
    """The RA's state, read from the database at each scrape."""

    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("shomei_database_up", "1 when the database answered the scrape")
        try:
            metrics = list(self._from_database())
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from metrics

    def _from_database(self) -> Iterator[Metric]:
        with self.ctx.factory() as session:
            queued = session.scalar(
                select(func.count()).select_from(OutboxMail).where(OutboxMail.sent_at.is_(None))
            )
            failing = session.scalar(
                select(func.count())
                .select_from(OutboxMail)
                .where(OutboxMail.sent_at.is_(None), OutboxMail.last_error.is_not(None))
            )
            mails = GaugeMetricFamily(
                "shomei_outbox_mails",
                "Mails not sent yet (failing: the last try failed)",
                labels=["state"],
            )
            mails.add_metric(["queued"], float(queued or 0))
            mails.add_metric(["failing"], float(failing or 0))
            yield mails
            counts = dict(
                session.execute(
                    select(Application.status, func.count()).group_by(Application.status)
                ).all()
            )
            by_status = GaugeMetricFamily(
                "shomei_applications", "Applications by status", labels=["status"]
            )
            for status in Status:
                by_status.add_metric([status.value], float(counts.get(status, 0)))
            yield by_status
            waiting = GaugeMetricFamily(
                "shomei_applications_waiting_for_ca",
                "Issue and revocation requests not yet answered by the CA",
            )
            waiting.add_metric(
                [],
                float(
                    sum(
                        counts.get(s, 0)
                        for s in (
                            Status.ISSUE_REQUESTED,
                            Status.AWAITING_ISSUANCE,
                            Status.REVOCATION_REQUESTED,
                            Status.AWAITING_REVOCATION,
                        )
                    )
                ),
            )
            yield waiting
            yield from self._jobs(session)
            try:
                crl = publication.current_crl(session, load_ca_certificate(self.ctx.settings.link))
            except ShomeiError:
                crl = None
            if crl is not None and crl.next_update is not None:
                left = GaugeMetricFamily(
                    "shomei_crl_next_update_seconds",
                    "Seconds until the current CRL's nextUpdate (negative: it has passed)",
                )
                left.add_metric([], (crl.next_update - self.ctx.now()).total_seconds())
                yield left

    def _jobs(self, session: Session) -> Iterator[Metric]:
        """Job runs of the last day by outcome, and when each job last finished well."""
        since = self.ctx.now() - dt.timedelta(days=1)
        recent = GaugeMetricFamily(
            "shomei_job_runs_24h",
            "Runs of each scheduled job started in the last 24 hours, by outcome "
            "(running: not finished, or its process died)",
            labels=["job", "outcome"],
        )
        counts = session.execute(
            select(JobRun.job, JobRun.outcome, func.count())
            .where(JobRun.started_at >= since)
            .group_by(JobRun.job, JobRun.outcome)
        ).all()
        for job, outcome, n in counts:
            recent.add_metric([job, outcome.value if outcome else "running"], float(n))
        yield recent
        last_ok = GaugeMetricFamily(
            "shomei_job_last_success_timestamp_seconds",
            "When each scheduled job last finished without a failure (Unix time)",
            labels=["job"],
        )
        for job, finished in session.execute(
            select(JobRun.job, func.max(JobRun.finished_at))
            .where(JobRun.outcome.in_([JobOutcome.OK, JobOutcome.ATTENTION]))
            .group_by(JobRun.job)
        ).all():
            if finished is not None:
                last_ok.add_metric([job], finished.timestamp())
        yield last_ok


def _registry(ctx: WebContext) -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # every worker's counters
    else:
        registry.register(REQUESTS)
        registry.register(LATENCY)
    registry.register(StateCollector(ctx))
    return registry


@blueprint.route("/metrics")
def metrics() -> Response:
    ctx: WebContext = current_app.extensions["shomei"]
    return Response(generate_latest(_registry(ctx)), mimetype=CONTENT_TYPE_LATEST)


def _started() -> None:
    g.metrics_started = time.perf_counter()


def _counted(response: Response) -> Response:
    rule = request.url_rule.rule if request.url_rule is not None else "(no route)"
    if rule != "/metrics":
        REQUESTS.labels(rule, request.method, str(response.status_code)).inc()
        started = g.get("metrics_started")
        if started is not None:
            LATENCY.labels(rule).observe(time.perf_counter() - started)
    return response


def init_app(app: Flask) -> None:
    app.before_request(_started)
    app.after_request(_counted)
    app.register_blueprint(blueprint)
