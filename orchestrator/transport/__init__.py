"""SSH and local transports behind one interface (run, open_stream, put, get), connection reuse, and
parallel fan-out."""

from orchestrator.transport.base import RunResult, Transport, build_command, display_command, mask
from orchestrator.transport.group import GroupError, GroupResult, fan_out
from orchestrator.transport.local import LocalTransport
from orchestrator.transport.pool import TransportPool, connect
from orchestrator.transport.settings import SshOptions
from orchestrator.transport.ssh import SshTransport
from orchestrator.transport.stream import Stream, StreamExit

__all__ = [
    "GroupError",
    "GroupResult",
    "LocalTransport",
    "RunResult",
    "SshOptions",
    "SshTransport",
    "Stream",
    "StreamExit",
    "Transport",
    "TransportPool",
    "build_command",
    "connect",
    "display_command",
    "fan_out",
    "mask",
]
