"""Every test here must leave no replica process behind."""

from tests.clusters.local.backends import backends, session  # noqa: F401
from tests.clusters.local.helpers import no_replica_left  # noqa: F401
