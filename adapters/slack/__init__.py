"""The Slack adapter (slack-bolt, async): employees at their desks.

inbound.py     Slack payloads -> Pinwall events (pure)
render.py      neutral messages and homes -> Block Kit (pure)
adapter.py     Socket Mode or HTTP (/slack/events), the Web API, files, App Home
manifest.yaml  the app, its scopes, command, shortcut, events and App Home
"""

from adapters.slack.adapter import SlackAdapter

__all__ = ["SlackAdapter"]
