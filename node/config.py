"""The node configuration's old import path, kept for scripts written before node/ became an
engine and domains (issue 13): everything is in `coopnet.node.engine.config`."""

from coopnet.node.engine.config import *  # noqa: F403
from coopnet.node.engine.config import (
    ConfigError,
    NodeConfig,
    read_config,
    read_identity,
    write_config,
    write_identity,
)

__all__ = [
    "ConfigError",
    "NodeConfig",
    "read_config",
    "read_identity",
    "write_config",
    "write_identity",
]
