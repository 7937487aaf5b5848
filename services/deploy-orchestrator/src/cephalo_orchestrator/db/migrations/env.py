from cephalo_common.db.migrations import run_env
from cephalo_orchestrator.db.models import Base

run_env(Base.metadata)
