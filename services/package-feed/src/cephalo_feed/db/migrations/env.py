from cephalo_common.db.migrations import run_env
from cephalo_feed.db.models import Base

run_env(Base.metadata)
