"""Prometheus metrics of one running Pinwall (own registry, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "pinwall_deliveries",
            "Sends by platform and outcome",
            ["platform", "outcome"],
            registry=self.registry,
        )
        self.retries = Counter(
            "pinwall_delivery_retries",
            "Sends scheduled again",
            ["platform"],
            registry=self.registry,
        )
        self.events = Counter(
            "pinwall_inbound_events",
            "Inbound events by platform and result",
            ["platform", "result"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "pinwall_outbox_messages",
            "Outbox messages by status",
            ["status"],
            registry=self.registry,
        )
        self.oldest_pending = Gauge(
            "pinwall_outbox_oldest_pending_seconds",
            "Age of the oldest pending message",
            registry=self.registry,
        )

        self.approval_turnaround = Histogram(
            "pinwall_approval_turnaround_seconds",
            "From a proposal (or its revision) to the gatekeepers' decision, by outcome",
            ["outcome"],
            buckets=(60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400),
            registry=self.registry,
        )
        self.code_failures = Counter(
            "pinwall_code_failures",
            "Wrong link and invite codes tried, by kind (and tries refused while throttled)",
            ["kind"],
            registry=self.registry,
        )
        self.publish_outcomes = Counter(
            "pinwall_publish_outcomes",
            "Attempts to publish to an outlet, by outcome",
            ["outlet", "outcome"],
            registry=self.registry,
        )
        self.adapter_up = Gauge(
            "pinwall_adapter_up",
            "1 while the messenger adapter receives and sends (as /healthz says), else 0",
            ["platform"],
            registry=self.registry,
        )
        self.feeds_failing = Gauge(
            "pinwall_feeds_failing",
            "Feeds whose last polls failed (paused ones not counted)",
            registry=self.registry,
        )
        self.feed_failing_seconds = Gauge(
            "pinwall_feed_failing_seconds",
            "How long the longest-failing feed has failed (0 when none fails)",
            registry=self.registry,
        )
        self.proposals_pending = Gauge(
            "pinwall_proposals_pending",
            "Proposals waiting for their gatekeepers",
            registry=self.registry,
        )
        self.proposal_waiting_seconds = Gauge(
            "pinwall_proposal_oldest_waiting_seconds",
            "How long the longest-waiting proposal has waited since made or revised",
            registry=self.registry,
        )

        # The mail bridge (adapters/email); its sends are also in pinwall_deliveries.
        self.mail_received = Counter(
            "pinwall_mail_received",
            "Mails taken in as posts, comments or commands, by kind (group, item, command)",
            ["kind"],
            registry=self.registry,
        )
        self.mail_refused = Counter(
            "pinwall_mail_refused",
            "Mails refused, held or dropped, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.mail_sent = Counter(
            "pinwall_mail_sent", "Mails handed to the relay", registry=self.registry
        )
        self.mail_bounced = Counter(
            "pinwall_mail_bounced",
            "Addresses marked failing by a delivery status notification",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
