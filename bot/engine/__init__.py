"""The pure core: flow definitions, loading, checking, reply understanding and the engine.

Nothing in this package performs I/O beyond reading flow and word files it is pointed at;
it never imports flask, twilio, rq, redis, sqlmodel or babel (a test enforces it).
"""

from .flow import Flow, Step
from .loader import load_flow, load_flow_text
from .problems import FlowError, Problem
from .runner import Reply, Timeout, resume, start
from .session import Participant, Session

__all__ = [
    "Flow", "FlowError", "Participant", "Problem", "Reply", "Session", "Step", "Timeout",
    "load_flow", "load_flow_text", "resume", "start",
]
