"""The bus's old import path, kept for scripts written before node/ became an engine and
domains (issue 13): everything is in `coopnet.node.engine.bus`."""

from coopnet.node.engine.bus import *  # noqa: F403
from coopnet.node.engine.bus import STREAM, SUBJECTS, Bus, stream_config

__all__ = ["STREAM", "SUBJECTS", "Bus", "stream_config"]
